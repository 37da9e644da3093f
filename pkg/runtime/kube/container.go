package kube

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	corev1 "k8s.io/api/core/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/yaml"
)

// defaultContainerAnnotation names a pod's default container, as kubectl reads it.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// nameSuffix makes debugger names unique; tests replace it.
var nameSuffix = func() string { return utilrand.String(5) }

// targetContainer picks the container whose namespaces are shared: the one
// named, else the pod's default-container annotation, else the first.
func targetContainer(p *corev1.Pod, named string) (string, error) {
	if named == "" {
		named = p.Annotations[defaultContainerAnnotation]
	}
	if named == "" {
		return p.Spec.Containers[0].Name, nil
	}
	for _, c := range p.Spec.Containers {
		if c.Name == named {
			return named, nil
		}
	}
	names := make([]string, len(p.Spec.Containers))
	for i, c := range p.Spec.Containers {
		names[i] = c.Name
	}
	return "", fmt.Errorf("%w: pod %s has no container %q: its containers are %v", runtime.ErrInvalidSpec, p.Name, named, names)
}

// uniqueName returns "debugger-xxxxx" unused by any container of p.
func uniqueName(p *corev1.Pod) string {
	used := map[string]bool{}
	for _, c := range p.Spec.Containers {
		used[c.Name] = true
	}
	for _, c := range p.Spec.InitContainers {
		used[c.Name] = true
	}
	for _, c := range p.Spec.EphemeralContainers {
		used[c.Name] = true
	}
	for {
		if n := "debugger-" + nameSuffix(); !used[n] {
			return n
		}
	}
}

// ephemeralContainer translates the backend-neutral spec into the
// container added to p, sharing targetName's namespaces.
func (b *call) ephemeralContainer(p *corev1.Pod, c spec.Container, targetName string) (*corev1.EphemeralContainer, error) {
	name := c.Name
	if name == "" {
		name = uniqueName(p)
	}
	ec := &corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name:            name,
		Image:           c.Image,
		ImagePullPolicy: pullPolicy(c.PullPolicy),
		Command:         c.Command,
		Args:            c.Args,
		WorkingDir:      c.WorkingDir,
		Stdin:           c.Stdin,
		TTY:             c.TTY,
		// Piped input (-i without -t) ends: let the command see EOF. A
		// terminal session keeps stdin open so it can be reattached.
		StdinOnce:                c.Stdin && !c.TTY,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}}
	env, from, err := debugEnv(p, c, targetName)
	if err != nil {
		return nil, err
	}
	ec.Env, ec.EnvFrom = env, from
	if b.opts.MountTargetVolumes {
		if ec.VolumeMounts, err = targetMounts(p, c, targetName); err != nil {
			return nil, err
		}
	}
	if c.SharePID {
		ec.TargetContainerName = targetName
	}
	sc, err := securityContext(c, p, targetName)
	if err != nil {
		return nil, err
	}
	ec.SecurityContext = sc
	if len(b.opts.Custom) > 0 {
		if err := applyCustom(ec, b.opts.Custom); err != nil {
			return nil, err
		}
	}
	return ec, nil
}

func pullPolicy(p spec.PullPolicy) corev1.PullPolicy {
	switch p {
	case spec.PullAlways:
		return corev1.PullAlways
	case spec.PullNever:
		return corev1.PullNever
	default:
		return corev1.PullIfNotPresent
	}
}

// securityContext maps the profile's security settings. A non-root
// profile (restricted) without a user takes the target's user, so that a
// pod running as non-root admits and starts the container
// (kubernetes#115671).
func securityContext(c spec.Container, p *corev1.Pod, targetName string) (*corev1.SecurityContext, error) {
	s := c.Security
	sc := &corev1.SecurityContext{RunAsUser: s.RunAsUser, RunAsGroup: s.RunAsGroup, RunAsNonRoot: s.RunAsNonRoot,
		AllowPrivilegeEscalation: s.AllowPrivilegeEscalation}
	if s.Privileged {
		t := true
		sc.Privileged = &t
	}
	if len(s.AddCapabilities)+len(s.DropCapabilities) > 0 {
		sc.Capabilities = &corev1.Capabilities{}
		for _, n := range s.AddCapabilities {
			sc.Capabilities.Add = append(sc.Capabilities.Add, corev1.Capability(n))
		}
		for _, n := range s.DropCapabilities {
			sc.Capabilities.Drop = append(sc.Capabilities.Drop, corev1.Capability(n))
		}
	}
	if s.SeccompRuntimeDefault {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	if c.User != "" {
		var uid, gid int64
		n, _ := fmt.Sscanf(c.User, "%d:%d", &uid, &gid)
		switch n {
		case 2:
			sc.RunAsUser, sc.RunAsGroup = &uid, &gid
		case 1:
			sc.RunAsUser = &uid
		default:
			return nil, fmt.Errorf("%w: --user %q: Kubernetes takes numeric IDs: UID or UID:GID", runtime.ErrInvalidSpec, c.User)
		}
	}
	if sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && sc.RunAsUser == nil {
		sc.RunAsUser, sc.RunAsGroup = targetIDs(p, targetName)
	}
	if *sc == (corev1.SecurityContext{}) {
		return nil, nil
	}
	return sc, nil
}

// targetIDs returns the non-root user and group the target container runs
// as, from its own or the pod's security context.
func targetIDs(p *corev1.Pod, name string) (uid, gid *int64) {
	if psc := p.Spec.SecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	for _, c := range p.Spec.Containers {
		if c.Name == name && c.SecurityContext != nil {
			if c.SecurityContext.RunAsUser != nil {
				uid = c.SecurityContext.RunAsUser
			}
			if c.SecurityContext.RunAsGroup != nil {
				gid = c.SecurityContext.RunAsGroup
			}
		}
	}
	if uid != nil && *uid == 0 {
		return nil, nil
	}
	return uid, gid
}

// refusedCustom are the fields --custom may not set, as kubectl refuses them.
var refusedCustom = []string{"name", "command", "image", "lifecycle", "volumeDevices"}

// applyCustom merges a partial container (JSON or YAML) into ec with
// strategic-merge semantics, after the profile.
func applyCustom(ec *corev1.EphemeralContainer, custom []byte) error {
	js, err := yaml.YAMLToJSON(custom)
	if err != nil {
		return fmt.Errorf("%w: --custom: parsing: %w", runtime.ErrInvalidSpec, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(js, &fields); err != nil {
		return fmt.Errorf("%w: --custom: want a container object: %w", runtime.ErrInvalidSpec, err)
	}
	for _, f := range refusedCustom {
		if _, ok := fields[f]; ok {
			return fmt.Errorf("%w: --custom may not set %q: use ephem's own flags for it", runtime.ErrInvalidSpec, f)
		}
	}
	var probe corev1.Container
	dec := json.NewDecoder(bytesReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&probe); err != nil {
		return fmt.Errorf("%w: --custom: %w", runtime.ErrInvalidSpec, err)
	}
	orig, err := json.Marshal(ec.EphemeralContainerCommon)
	if err != nil {
		return fmt.Errorf("encoding the container: %w", err)
	}
	merged, err := strategicMerge(orig, js, reflect.TypeFor[corev1.Container]())
	if err != nil {
		return fmt.Errorf("%w: --custom: merging: %w", runtime.ErrInvalidSpec, err)
	}
	var out corev1.EphemeralContainerCommon
	if err := json.Unmarshal(merged, &out); err != nil {
		return fmt.Errorf("%w: --custom: %w", runtime.ErrInvalidSpec, err)
	}
	ec.EphemeralContainerCommon = out
	return nil
}
