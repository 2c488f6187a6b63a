package cluster

import (
	"context"
	"fmt"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Permission is one right cnilab needs.
type Permission struct {
	Verb, Group, Resource, Subresource string
	// Namespace "" is every namespace (cnilab's namespaces do not exist
	// before the run, so only a cluster-wide binding can cover them).
	Namespace string
	// Why says what cnilab does with it.
	Why string
}

func (p Permission) String() string {
	r := p.Resource
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	if p.Group != "" {
		r += "." + p.Group
	}
	where := "cluster-wide"
	if p.Namespace != "" {
		where = "in namespace " + p.Namespace
	}
	return fmt.Sprintf("%s %s %s", p.Verb, r, where)
}

// Required are the rights a run needs, the README's ClusterRole. Reads
// cover detection; writes only ever touch cnilab-<run> namespaces and what
// is inside them.
func Required() []Permission {
	var ps []Permission
	for _, ns := range Namespaces {
		ps = append(ps, Permission{Verb: "list", Group: "apps", Resource: "daemonsets", Namespace: ns, Why: "detect the CNI"},
			Permission{Verb: "get", Resource: "configmaps", Namespace: ns, Why: "kube-proxy mode, the CNI's configuration"})
	}
	ps = append(ps,
		Permission{Verb: "list", Resource: "nodes", Why: "choose the bench nodes"},
		Permission{Verb: "create", Resource: "namespaces", Why: "cnilab-<run>"},
		Permission{Verb: "list", Resource: "namespaces", Why: "find leftovers by label"},
		Permission{Verb: "get", Resource: "namespaces", Why: "check a namespace is cnilab's before deleting it"},
		Permission{Verb: "delete", Resource: "namespaces", Why: "remove cnilab-<run>"},
	)
	for _, v := range []string{"create", "get", "list", "delete"} {
		ps = append(ps, Permission{Verb: v, Resource: "pods", Why: "bench pods"})
	}
	ps = append(ps,
		Permission{Verb: "create", Resource: "pods", Subresource: "exec", Why: "run iperf3 and the probe in the bench pods"},
		Permission{Verb: "create", Resource: "services", Why: "ClusterIP Services for the s-tests"},
		Permission{Verb: "get", Resource: "services", Why: "read their ClusterIPs"},
	)
	return ps
}

// AccessError lists the rights the credentials lack.
type AccessError struct{ Missing []Permission }

func (e *AccessError) Error() string {
	var s []string
	for _, p := range e.Missing {
		s = append(s, fmt.Sprintf("%s (%s)", p, p.Why))
	}
	return "the kubeconfig's credentials may not " + strings.Join(s, "; ") + " (README: the ClusterRole cnilab needs)"
}

// CheckAccess asks the API server (SelfSubjectAccessReview) for every
// right in want, before anything is created.
func CheckAccess(ctx context.Context, cs kubernetes.Interface, want []Permission) error {
	var missing []Permission
	for _, p := range want {
		r := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Verb: p.Verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource, Namespace: p.Namespace,
		}}}
		res, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, r, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("ask the API server whether cnilab may %s: %w", p, err)
		}
		if !res.Status.Allowed {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return &AccessError{Missing: missing}
	}
	return nil
}
