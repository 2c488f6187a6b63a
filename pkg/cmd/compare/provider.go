package compare

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cnilab/cnilab/pkg/cmd/cli"
	"github.com/cnilab/cnilab/pkg/command"
	cmp "github.com/cnilab/cnilab/pkg/compare"
	"github.com/cnilab/cnilab/pkg/images"
	"github.com/cnilab/cnilab/pkg/lab/kind"
)

// kindReadiness says whether this machine can run kind labs now: a Docker
// engine that answers, and the images the labs need. Each returns nil or
// the reason it cannot.
type kindReadiness struct {
	engine func(ctx context.Context) error
	images func(ctx context.Context) error
}

// choice is the provider a run uses and why, as the run reports it.
type choice struct {
	name   string
	reason string
}

// chooseProvider resolves --provider. auto takes kind only when every
// selected lab has a kind recipe, an engine answers and the images are
// there; otherwise it stays on the embedded netns provider and says why, so
// a fresh machine's `make lab-compare` stays fast and nothing is silently
// substituted.
func chooseProvider(ctx context.Context, want string, noKindRecipe []string, k kindReadiness) (choice, error) {
	switch want {
	case "netns":
		return choice{"netns", "asked for"}, nil
	case "kind":
		if len(noKindRecipe) > 0 {
			return choice{}, fmt.Errorf("--provider kind: %s %s no kind recipe yet (labs/*.yaml kind:)", strings.Join(sorted(noKindRecipe), ", "), haveOrHas(len(noKindRecipe)))
		}
		if err := k.engine(ctx); err != nil {
			return choice{}, fmt.Errorf("--provider kind: %w (make kind-host sets one up)", err)
		}
		if err := k.images(ctx); err != nil {
			return choice{}, fmt.Errorf("--provider kind: %w", err)
		}
		return choice{"kind", "asked for"}, nil
	case "auto":
		if len(noKindRecipe) > 0 {
			return choice{"netns", fmt.Sprintf("auto: %s %s no kind recipe yet", strings.Join(sorted(noKindRecipe), ", "), haveOrHas(len(noKindRecipe)))}, nil
		}
		if err := k.engine(ctx); err != nil {
			return choice{"netns", "auto: " + err.Error()}, nil
		}
		if err := k.images(ctx); err != nil {
			return choice{"netns", "auto: " + err.Error()}, nil
		}
		return choice{"kind", "auto: a Docker engine answers and the kind images are present"}, nil
	}
	return choice{}, fmt.Errorf("--provider %q: auto, netns or kind", want)
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func haveOrHas(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

// KindProvider is the kind provider with the checks a kind run makes
// first: an engine that answers, the images, the run's prerequisites
// (exit 3 with what is missing). Its steps are logged to log.
func KindProvider(ctx context.Context, o *cmp.Options, log io.Writer) (*kind.Provider, error) {
	r := command.Exec{}
	if err := images.CheckEngine(ctx, r); err != nil {
		return nil, cli.WithCode(cli.ExitPrerequisite, fmt.Errorf("--provider kind: %w (make kind-host sets one up)", err))
	}
	missing, err := images.Present(ctx, r)
	if err == nil {
		err = images.MissingError(missing)
	}
	if err != nil {
		return nil, cli.WithCode(cli.ExitPrerequisite, fmt.Errorf("--provider kind: %w", err))
	}
	if err := o.Prerequisites(ctx, "kind"); err != nil {
		return nil, cli.WithCode(cli.ExitPrerequisite, err)
	}
	kp := kind.New(kind.ImagesFrom(images.Offline()), r, nil)
	kp.Log = func(format string, args ...any) { fmt.Fprintf(log, "  "+format+"\n", args...) }
	return kp, nil
}
