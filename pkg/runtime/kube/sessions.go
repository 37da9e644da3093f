package kube

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// reusable returns a running debugger of p with the same image and
// security context as ec (--reuse).
func reusable(p *corev1.Pod, ec *corev1.EphemeralContainer) (string, bool) {
	for _, e := range p.Spec.EphemeralContainers {
		if e.Image != ec.Image || e.TargetContainerName != ec.TargetContainerName ||
			!reflect.DeepEqual(e.SecurityContext, ec.SecurityContext) || !e.Stdin {
			continue
		}
		if s, ok := containerStatus(p, e.Name); ok && s.State.Running != nil {
			return e.Name, true
		}
	}
	return "", false
}

// Session is one ephemeral container, as ephem ls shows it.
type Session struct {
	Namespace, Pod, Name, Image, Target, State string
	Started                                    time.Time
	ExitCode                                   *int32
}

// List returns the ephemeral containers of the pods ref names (all pods of
// the namespace when ref is empty, or those -l selects).
func (b *Backend) List(ctx context.Context, ref *target.Ref) ([]Session, error) {
	if ref != nil && ref.Namespace != "" {
		b.namespace = ref.Namespace
	}
	var pods []corev1.Pod
	if ref != nil && ref.Name != "" {
		ps, err := b.resolvePods(ctx, *ref)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			pods = append(pods, *p)
		}
	} else {
		list, err := b.client.ListPods(ctx, b.namespace, b.opts.Selector)
		if err != nil {
			return nil, b.getError(err, "pods", b.opts.Selector)
		}
		pods = list.Items
	}
	var out []Session
	for _, p := range pods {
		for _, e := range p.Spec.EphemeralContainers {
			s := Session{Namespace: p.Namespace, Pod: p.Name, Name: e.Name, Image: e.Image, Target: e.TargetContainerName, State: "Waiting"}
			if st, ok := containerStatus(&p, e.Name); ok {
				switch {
				case st.State.Running != nil:
					s.State, s.Started = "Running", st.State.Running.StartedAt.Time
				case st.State.Terminated != nil:
					t := st.State.Terminated
					s.State, s.Started, s.ExitCode = "Terminated", t.StartedAt.Time, &t.ExitCode
				case st.State.Waiting != nil:
					s.State = st.State.Waiting.Reason
				}
			}
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pod != out[j].Pod {
			return out[i].Pod < out[j].Pod
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// PrintSessions writes sessions as a table.
func PrintSessions(w io.Writer, sessions []Session, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tCONTAINER\tIMAGE\tTARGET\tSTATE\tAGE\tEXIT")
	for _, s := range sessions {
		age, exit := "-", "-"
		if !s.Started.IsZero() {
			age = duration.HumanDuration(now.Sub(s.Started))
		}
		if s.ExitCode != nil {
			exit = fmt.Sprint(*s.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Pod, s.Name, s.Image, s.Target, s.State, age, exit)
	}
	return tw.Flush()
}

// Attach reattaches to the debug container ref names (pod/NAME/CONTAINER);
// one that has ended shows its output and exit code.
func (b *Backend) Attach(ctx context.Context, ref target.Ref, tty bool, streams session.Streams) error {
	if ref.Namespace != "" {
		b.namespace = ref.Namespace
	}
	if ref.Scheme != "pod" || ref.Container == "" {
		return fmt.Errorf("%w: attach takes pod/NAME/CONTAINER, as ephem ls lists them", target.ErrInvalid)
	}
	pods, err := b.resolvePods(ctx, target.Ref{Scheme: "pod", Kind: target.Kubernetes, Name: ref.Name})
	if err != nil {
		return err
	}
	p := pods[0]
	var ec *corev1.EphemeralContainer
	for i := range p.Spec.EphemeralContainers {
		if p.Spec.EphemeralContainers[i].Name == ref.Container {
			ec = &p.Spec.EphemeralContainers[i]
		}
	}
	if ec == nil {
		// A container of a pod ephem created (node/NAME, --copy-to).
		for _, ctr := range p.Spec.Containers {
			if ctr.Name == ref.Container {
				_, err := b.podSession(ctx, p, ctr.Name, spec.Container{Stdin: ctr.Stdin, TTY: ctr.TTY && tty}, streams)
				return err
			}
		}
		return fmt.Errorf("%w: pod %s has no debug container %q: see ephem ls pod/%s", target.ErrNotFound, p.Name, ref.Container, p.Name)
	}
	c := spec.Container{Stdin: ec.Stdin, TTY: ec.TTY && tty}
	if !ec.Stdin {
		fmt.Fprintf(b.opts.Log, "%s was started without -i: showing its output\n", ec.Name)
	}
	return b.session(ctx, p, ec.Name, c, streams)
}
