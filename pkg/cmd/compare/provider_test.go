package compare

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestChooseProvider(t *testing.T) {
	ok := func(context.Context) error { return nil }
	noEngine := func(context.Context) error { return errors.New("no Docker engine answers") }
	noImages := func(context.Context) error {
		return errors.New("kind images not built: run `cnilab images build`")
	}
	cases := []struct {
		name, want string
		noRecipe   []string
		k          kindReadiness
		got        string
		reason     string // substring
		err        string // substring; "" = no error
	}{
		{name: "auto with everything", want: "auto", k: kindReadiness{ok, ok}, got: "kind", reason: "engine answers"},
		{name: "auto without an engine", want: "auto", k: kindReadiness{noEngine, ok}, got: "netns", reason: "no Docker engine"},
		{name: "auto without images", want: "auto", k: kindReadiness{ok, noImages}, got: "netns", reason: "cnilab images build"},
		{name: "auto with labs lacking a recipe", want: "auto", noRecipe: []string{"cilium", "calico"}, k: kindReadiness{ok, ok}, got: "netns", reason: "calico, cilium have no kind recipe"},
		{name: "netns", want: "netns", k: kindReadiness{noEngine, noImages}, got: "netns"},
		{name: "kind without an engine fails", want: "kind", k: kindReadiness{noEngine, ok}, err: "make kind-host"},
		{name: "kind without images fails", want: "kind", k: kindReadiness{ok, noImages}, err: "cnilab images build"},
		{name: "kind with a lab lacking a recipe fails", want: "kind", noRecipe: []string{"calico"}, k: kindReadiness{ok, ok}, err: "calico has no kind recipe"},
		{name: "unknown", want: "vagrant", k: kindReadiness{ok, ok}, err: "auto, netns or kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chooseProvider(context.Background(), tc.want, tc.noRecipe, tc.k)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.name != tc.got || !strings.Contains(c.reason, tc.reason) {
				t.Errorf("got %+v, want %s because …%s…", c, tc.got, tc.reason)
			}
		})
	}
}
