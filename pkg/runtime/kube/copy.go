package kube

import (
	"context"
	"fmt"
	"maps"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CopyOptions are kubectl debug's --copy-to flags.
type CopyOptions struct {
	// Name is the copy's name (--copy-to).
	Name string
	// Replace deletes the original pod after copying (--replace).
	Replace bool
	// SameNode schedules the copy on the original's node (--same-node).
	SameNode bool
	// ShareProcesses sets shareProcessNamespace on the copy (default true).
	ShareProcesses bool
	// SetImages changes containers' images: name=image, "*" for all (--set-image).
	SetImages map[string]string
	// KeepLabels, KeepAnnotations, KeepLiveness, KeepReadiness, KeepStartup
	// and KeepInitContainers keep what the copy otherwise drops (--keep-*).
	KeepLabels, KeepAnnotations, KeepLiveness, KeepReadiness, KeepStartup, KeepInitContainers bool
}

// debugCopy debugs a copy of p (--copy-to), as kubectl debug does: it
// creates the copy with the debug container added (or, with --set-image
// and no --image, the target container as the one to follow), deletes the
// original with --replace, runs the session and leaves the copy running.
func (b *call) debugCopy(ctx context.Context, p *corev1.Pod, containerName string, c spec.Container, streams session.Streams) error {
	b.timer = runtime.NewTimer(b.opts.Log)
	defer b.timer.Report()
	tname, err := targetContainer(p, firstNonEmpty(containerName, c.TargetContainer))
	if err != nil {
		return err
	}
	cp, name, err := b.podCopy(p, tname, c)
	if err != nil {
		return err
	}
	created, err := b.createPod(ctx, cp, c.Stdin, streams.Out)
	if err != nil || created == nil {
		return err
	}
	fmt.Fprintf(b.opts.Log, "created pod %s, a copy of %s, debugging container %s\n", created.Name, p.Name, name)
	defer fmt.Fprintf(b.opts.Log, "pod %s keeps running; delete it with: kubectl delete pod %s -n %s\n", created.Name, created.Name, created.Namespace)
	if b.opts.Copy.Replace {
		if err := b.client.DeletePod(ctx, p.Namespace, p.Name); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("%w: deleting the original pod %s (--replace; its copy %s was created): %s", runtime.ErrOS, p.Name, created.Name, apiMessage(err))
		}
		fmt.Fprintf(b.opts.Log, "deleted the original pod %s (--replace)\n", p.Name)
	}
	_, err = b.podSession(ctx, created, name, c, streams)
	return err
}

// podCopy returns the copy of p kubectl's generatePodCopyWithDebugContainer
// and its profiles make for --copy-to, and the name of the container to
// follow in it.
func (b *call) podCopy(p *corev1.Pod, tname string, c spec.Container) (*corev1.Pod, string, error) {
	o := b.opts.Copy
	cp := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: p.Namespace,
			Labels: maps.Clone(p.Labels), Annotations: maps.Clone(p.Annotations)},
		Spec: *p.Spec.DeepCopy(),
	}
	// A new pod may not have ephemeral containers.
	cp.Spec.EphemeralContainers = nil
	share := o.ShareProcesses
	cp.Spec.ShareProcessNamespace = &share
	if !o.SameNode {
		cp.Spec.NodeName = ""
	}
	for i, ctr := range cp.Spec.Containers {
		img := o.SetImages["*"]
		if named, ok := o.SetImages[ctr.Name]; ok {
			img = named
		}
		if img != "" {
			cp.Spec.Containers[i].Image = img
		}
	}

	name := c.Name
	if name == "" && c.Image == "" && len(o.SetImages) > 0 {
		// --set-image without --image: follow the target container itself.
		name = tname
	}
	var dc *corev1.Container
	for i := range cp.Spec.Containers {
		if cp.Spec.Containers[i].Name == name {
			dc = &cp.Spec.Containers[i]
		}
	}
	if dc == nil {
		if c.Image == "" {
			return nil, "", fmt.Errorf("%w: --copy-to needs --image for a new debug container, or --set-image to change the copy's images", runtime.ErrInvalidSpec)
		}
		ctr, err := b.podContainer(cp, c, tname, nil)
		if err != nil {
			return nil, "", err
		}
		cp.Spec.Containers = append(cp.Spec.Containers, ctr)
		name = ctr.Name
	} else if err := b.modifyContainer(cp, dc, c, tname); err != nil {
		return nil, "", err
	}

	// What the profiles do for a pod copy, as --keep-* allow.
	if !o.KeepLabels {
		cp.Labels = nil
	}
	if !o.KeepAnnotations {
		cp.Annotations = nil
	}
	for i := range cp.Spec.Containers {
		ctr := &cp.Spec.Containers[i]
		if !o.KeepLiveness {
			ctr.LivenessProbe = nil
		}
		if !o.KeepReadiness {
			ctr.ReadinessProbe = nil
		}
		if !o.KeepStartup {
			ctr.StartupProbe = nil
		}
	}
	if !o.KeepInitContainers {
		cp.Spec.InitContainers = nil
	}
	return cp, name, nil
}

// modifyContainer changes an existing container of the copy into the debug
// container, as kubectl does when -c names one: the command, environment,
// image and pull policy only when given; stdin and tty always; the
// profile's security settings added to the container's own.
func (b *call) modifyContainer(cp *corev1.Pod, dc *corev1.Container, c spec.Container, tname string) error {
	switch {
	case len(c.Command) > 0:
		dc.Command, dc.Args = c.Command, c.Args
	case len(c.Args) > 0:
		dc.Args = c.Args
	}
	switch {
	case c.EnvFromTarget && dc.Name == tname:
		// The target itself: its environment stays, -e after it.
		for _, e := range c.Env {
			dc.Env = append(dc.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
		}
	case c.EnvFromTarget:
		env, from, err := debugEnv(cp, c, tname)
		if err != nil {
			return err
		}
		dc.Env, dc.EnvFrom = env, from
	case len(c.Env) > 0:
		dc.Env = nil
		for _, e := range c.Env {
			dc.Env = append(dc.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
		}
	}
	if c.Image != "" {
		dc.Image, dc.ImagePullPolicy = c.Image, pullPolicy(c.PullPolicy)
	}
	if c.WorkingDir != "" {
		dc.WorkingDir = c.WorkingDir
	}
	dc.Stdin, dc.TTY = c.Stdin, c.TTY
	sc, err := securityContext(c, cp, tname)
	if err != nil {
		return err
	}
	dc.SecurityContext = mergeSecurity(dc.SecurityContext, sc)
	return b.customize(dc)
}

// mergeSecurity adds the profile's settings in add to the container's own
// security context sc.
func mergeSecurity(sc, add *corev1.SecurityContext) *corev1.SecurityContext {
	if add == nil {
		return sc
	}
	if sc == nil {
		return add
	}
	out := sc.DeepCopy()
	for dst, src := range map[**bool]*bool{&out.Privileged: add.Privileged, &out.RunAsNonRoot: add.RunAsNonRoot,
		&out.AllowPrivilegeEscalation: add.AllowPrivilegeEscalation} {
		if src != nil {
			*dst = src
		}
	}
	if add.RunAsUser != nil {
		out.RunAsUser = add.RunAsUser
	}
	if add.RunAsGroup != nil {
		out.RunAsGroup = add.RunAsGroup
	}
	if add.SeccompProfile != nil {
		out.SeccompProfile = add.SeccompProfile
	}
	if caps := add.Capabilities; caps != nil {
		if out.Capabilities == nil {
			out.Capabilities = &corev1.Capabilities{}
		}
		out.Capabilities.Add = appendNew(out.Capabilities.Add, caps.Add...)
		out.Capabilities.Drop = appendNew(out.Capabilities.Drop, caps.Drop...)
	}
	return out
}

func appendNew(have []corev1.Capability, add ...corev1.Capability) []corev1.Capability {
	for _, c := range add {
		found := false
		for _, h := range have {
			found = found || h == c
		}
		if !found {
			have = append(have, c)
		}
	}
	return have
}

// podContainer translates c into a regular container of p, with
// targetName's user for non-root profiles; mutate runs before --custom is
// applied, as kubectl applies the custom profile last.
func (b *call) podContainer(p *corev1.Pod, c spec.Container, targetName string, mutate func(*corev1.Container)) (corev1.Container, error) {
	plain := *b
	plain.opts.Custom = nil
	ec, err := plain.ephemeralContainer(p, c, targetName)
	if err != nil {
		return corev1.Container{}, err
	}
	ctr := corev1.Container(ec.EphemeralContainerCommon)
	if mutate != nil {
		mutate(&ctr)
	}
	return ctr, b.customize(&ctr)
}

// customize applies --custom to a regular container.
func (b *call) customize(ctr *corev1.Container) error {
	if len(b.opts.Custom) == 0 {
		return nil
	}
	ec := &corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon(*ctr)}
	if err := applyCustom(ec, b.opts.Custom); err != nil {
		return err
	}
	*ctr = corev1.Container(ec.EphemeralContainerCommon)
	return nil
}
