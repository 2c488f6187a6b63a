package compare

import (
	"context"
	"fmt"
	"sort"
	"strings"
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
