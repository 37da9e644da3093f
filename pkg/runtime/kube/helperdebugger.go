package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// A helper debugger is an ephemeral container that idles beside a target
// so that ephem cp, ns and capture can exec their commands in it (tar,
// readlink, tcpdump): the target needs none of them. Ephemeral containers
// can never be removed from a pod, so a running helper with the same
// image, profile and target is reused rather than a new one added.

// defaultToolImage is the tool image when EPHEM_IMAGE is not set, the same
// default as ephem debug's --image.
const defaultToolImage = "busybox:latest"

// helperCommand is a helper debugger's command: it idles until the pod
// ends (or is sent SIGTERM), doing nothing itself.
var helperCommand = []string{"sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}

// helper is a running helper debugger.
type helper struct {
	pod    *corev1.Pod // the pod as last read
	name   string      // the ephemeral container
	target string      // the target container whose namespaces it shares
	image  string
	root   bool // it runs as root (owners can be kept on write)
}

// toolImage is the image helper debuggers run: --image, else EPHEM_IMAGE,
// else busybox.
func (b *call) toolImage() string {
	if b.opts.ToolImage != "" {
		return b.opts.ToolImage
	}
	if img := os.Getenv("EPHEM_IMAGE"); img != "" {
		return img
	}
	return defaultToolImage
}

// helperFor returns a running helper debugger in the pod ref names, for
// ref's container (or the pod's default), reusing one with the same image
// and profile. profileName "" picks general, or baseline where admission
// refuses general's SYS_PTRACE (PodSecurity baseline), or restricted (as
// the target's user) for a target that runs as non-root.
func (b *call) helperFor(ctx context.Context, ref target.Ref, verb, profileName string) (*helper, error) {
	if ref.Scheme == target.SchemeNode {
		return nil, usage("%s works on pods and workloads, not %s", verb, ref)
	}
	p, err := b.onePod(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := checkNotStatic(p); err != nil {
		return nil, err
	}
	tname, err := targetContainer(p, ref.Container)
	if err != nil {
		return nil, err
	}
	profiles := []string{profileName}
	if profileName == "" && !nonRootTarget(p, tname) {
		profiles = []string{profile.Default, "baseline"}
	}
	var candidates []*corev1.EphemeralContainer
	for _, name := range profiles {
		ec, err := b.helperContainer(p, tname, name)
		if err != nil {
			return nil, err
		}
		if name, ok := idleHelper(p, ec); ok {
			return &helper{pod: p, name: name, target: tname, image: ec.Image, root: runsAsRoot(ec)}, nil
		}
		candidates = append(candidates, ec)
	}
	if err := b.checkExec(ctx, p.Namespace); err != nil {
		return nil, err
	}
	// The API server applies a patch whole or refuses it whole: each
	// candidate is patched for real, the next tried when admission refuses
	// one, and nothing is left of a refused one (no dry run first: it
	// could only say what the patch says, a round trip later).
	for i, ec := range candidates {
		var q *corev1.Pod
		q, err = b.addContainer(ctx, p, ec)
		if err == nil {
			return b.startHelper(ctx, q, ec)
		}
		if !errors.Is(err, ErrDenied) || i == len(candidates)-1 {
			break
		}
	}
	if errors.Is(err, ErrDenied) && profileName != "" {
		return nil, fmt.Errorf("%w: %s needs a helper debug container with the %s profile, which admission refuses in namespace %s (nothing was added): %s",
			runtime.ErrPermission, verb, profileName, p.Namespace, admissionReason(err))
	}
	return nil, err
}

// admissionReason is the part of a refusal that says what admission
// objected to, without patchError's advice on flags ephem debug has.
func admissionReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "violates PodSecurity"); i >= 0 {
		return msg[i:]
	}
	return msg
}

// startHelper waits until commands can run in ec, just added to p (the
// patch's answer).
func (b *call) startHelper(ctx context.Context, p *corev1.Pod, ec *corev1.EphemeralContainer) (*helper, error) {
	fmt.Fprintf(b.opts.Log, "added helper debug container %s (%s) to pod %s (target %s); later cp, ns and capture reuse it\n",
		ec.Name, ec.Image, p.Name, ec.TargetContainerName)
	p, err := b.waitFor(ctx, p, ec.Name, "running", running)
	if err != nil {
		return nil, err
	}
	if s, _ := containerStatus(p, ec.Name); s.State.Terminated != nil {
		t := s.State.Terminated
		return nil, fmt.Errorf("%w: helper debug container %s ended at once (exit %d, %s %s): the tool image %s needs sh and sleep; give --image (or EPHEM_IMAGE) a busybox image",
			runtime.ErrUnsupported, ec.Name, t.ExitCode, t.Reason, strings.TrimSpace(t.Message), ec.Image)
	}
	h := &helper{pod: p, name: ec.Name, target: ec.TargetContainerName, image: ec.Image, root: runsAsRoot(ec)}
	return h, b.waitExec(ctx, h)
}

// helperContainer is the helper debugger for target container tname of p.
func (b *call) helperContainer(p *corev1.Pod, tname, profileName string) (*corev1.EphemeralContainer, error) {
	c := spec.Container{Image: b.toolImage(), Command: helperCommand, SharePID: true, TargetContainer: tname}
	if profileName == "" {
		profileName = profile.Default
		if nonRootTarget(p, tname) {
			profileName = "restricted"
		}
	}
	pr, err := profile.Get(profileName)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", runtime.ErrUsage, err)
	}
	if err := pr.Apply(&c, profile.Ephemeral); err != nil {
		return nil, fmt.Errorf("applying profile %s: %w", profileName, err)
	}
	if uid, _ := targetIDs(p, tname); uid == nil && c.Security.RunAsNonRoot != nil && *c.Security.RunAsNonRoot {
		// runAsNonRoot with the image's user: the kubelet may report it.
		if u, ok := statusUser(p, tname); ok && u.UID != 0 {
			c.User = fmt.Sprintf("%d:%d", u.UID, u.GID)
		}
	}
	saved := b.opts.Custom
	b.opts.Custom = nil // --custom is ephem debug's, not the helper's
	defer func() { b.opts.Custom = saved }()
	return b.ephemeralContainer(p, c, tname)
}

// nonRootTarget says whether target container name of p runs as non-root.
func nonRootTarget(p *corev1.Pod, name string) bool {
	if uid, _ := targetIDs(p, name); uid != nil {
		return true
	}
	nonRoot := p.Spec.SecurityContext != nil && p.Spec.SecurityContext.RunAsNonRoot != nil && *p.Spec.SecurityContext.RunAsNonRoot
	if c, ok := containerNamed(p, name); ok && c.SecurityContext != nil && c.SecurityContext.RunAsNonRoot != nil {
		nonRoot = *c.SecurityContext.RunAsNonRoot
	}
	if u, ok := statusUser(p, name); ok && u.UID != 0 {
		return true
	}
	return nonRoot
}

// statusUser is the user the kubelet reports target container name runs
// as (Kubernetes 1.31+ with SupplementalGroupsPolicy).
func statusUser(p *corev1.Pod, name string) (*corev1.LinuxContainerUser, bool) {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == name && s.User != nil && s.User.Linux != nil {
			return s.User.Linux, true
		}
	}
	return nil, false
}

// runsAsRoot says whether ec runs as root (a user it does not set is the
// image's, root for the tool images ephem uses).
func runsAsRoot(ec *corev1.EphemeralContainer) bool {
	sc := ec.SecurityContext
	return sc == nil || sc.RunAsUser == nil || *sc.RunAsUser == 0
}

// idleHelper returns a running helper debugger of p that ec would repeat:
// the same image, target, security context and idle command.
func idleHelper(p *corev1.Pod, ec *corev1.EphemeralContainer) (string, bool) {
	for _, e := range p.Spec.EphemeralContainers {
		if e.Image != ec.Image || e.TargetContainerName != ec.TargetContainerName || !slices.Equal(e.Command, helperCommand) ||
			len(e.Args) > 0 || !reflect.DeepEqual(e.SecurityContext, ec.SecurityContext) || len(e.Env)+len(e.EnvFrom) > 0 {
			continue
		}
		if s, ok := containerStatus(p, e.Name); ok && s.State.Running != nil {
			return e.Name, true
		}
	}
	return "", false
}

// checkExec asks the API server whether the user may exec in pods of ns:
// without it a helper debugger would be added but of no use.
func (b *call) checkExec(ctx context.Context, ns string) error {
	attr := &authv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "pods", Subresource: "exec"}
	allowed, err := b.client.Allowed(ctx, attr)
	if err != nil {
		return nil // the review API is unavailable: let the real calls decide
	}
	if !allowed {
		return fmt.Errorf("%w: you may not create pods/exec in namespace %s (RBAC), which cp, ns and capture need on Kubernetes: nothing was added; ask for that permission", runtime.ErrPermission, ns)
	}
	return nil
}

// waitExec waits until exec reaches a new helper: the API server may
// report it running a moment before the kubelet's own view has it.
func (b *call) waitExec(ctx context.Context, h *helper) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := b.exec(ctx, h, []string{"true"}, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "not found") || ctx.Err() != nil {
			if err != nil {
				return apiFailure(err, "running a command in helper debug container %s", h.name)
			}
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// exec runs argv in the helper debugger with the given streams (nil: not
// connected). A command that exits non-zero returns a
// utilexec.CodeExitError.
func (b *call) exec(ctx context.Context, h *helper, argv []string, in io.Reader, out, errOut io.Writer) error {
	u := b.client.ExecURL(h.pod.Namespace, h.pod.Name, &corev1.PodExecOptions{
		Container: h.name, Command: argv, Stdin: in != nil, Stdout: out != nil, Stderr: errOut != nil,
	})
	ex, err := b.executor(u)
	if err != nil {
		return err
	}
	return ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: in, Stdout: out, Stderr: errOut})
}

// Exit codes of ephem's scripts in a helper debugger.
const (
	scriptNoPath      = 66
	scriptUsage       = 64
	scriptUnsupported = 69
	scriptGone        = 75
	scriptPermission  = 77
	scriptNoCommand   = 127
)

// scriptError explains a failed script: its own exit code and last line
// of stderr, or, for a broken stream or a killed command, whether the
// target went away meanwhile.
func (b *call) scriptError(ctx context.Context, h *helper, what string, err error, stderr string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := lastLine(stderr)
	var ce utilexec.CodeExitError
	failed := errors.As(err, &ce) && ce.Code < 128 // not killed, not a broken stream
	if failed {
		if sentinel, ok := scriptSentinels[ce.Code]; ok {
			return fmt.Errorf("%w: %s: %s", sentinel, what, msg)
		}
		if ce.Code == scriptNoCommand {
			return fmt.Errorf("%w: %s: the tool image %s lacks a command ephem runs in it (%s): give --image (or EPHEM_IMAGE) a busybox image",
				runtime.ErrUnsupported, what, h.image, msg)
		}
	}
	if !failed {
		if gone := b.targetGone(ctx, h); gone != nil {
			return fmt.Errorf("%w: %s: %w", runtime.ErrTargetGone, what, gone)
		}
	}
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: %s: %s", runtime.ErrPermission, what, apiMessage(err))
	case msg == "":
		return apiFailure(err, "%s in pod %s", what, h.pod.Name)
	case strings.Contains(msg, "Permission denied"):
		return fmt.Errorf("%w: %s: %s", runtime.ErrPermission, what, msg)
	}
	return fmt.Errorf("%w: %s: %s", runtime.ErrOS, what, msg)
}

// scriptSentinels are the errors the scripts' own exit codes stand for.
var scriptSentinels = map[int]error{
	scriptNoPath: target.ErrNotFound, scriptUsage: runtime.ErrUsage, scriptPermission: runtime.ErrPermission,
	scriptUnsupported: runtime.ErrUnsupported, scriptGone: runtime.ErrTargetGone,
}

// targetGone says why the target is no longer there, or nil: the pod was
// deleted, the target container restarted, or the helper ended with it.
// The kubelet reports a container's end up to a second late: it looks
// for a few seconds.
func (b *call) targetGone(ctx context.Context, h *helper) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	for {
		p, err := b.client.GetPod(ctx, h.pod.Namespace, h.pod.Name)
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("pod %s was deleted", h.pod.Name)
		case err != nil:
			return nil
		case p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning:
			return fmt.Errorf("pod %s is ending", p.Name)
		}
		if s, ok := containerStatus(p, h.name); ok && s.State.Running == nil {
			return fmt.Errorf("the target container %s exited (and with it helper debug container %s)", h.target, h.name)
		}
		if restarts(p, h.target) != restarts(h.pod, h.target) {
			return fmt.Errorf("the target container %s restarted", h.target)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// restarts is container name's restart count in p.
func restarts(p *corev1.Pod, name string) int32 {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == name {
			return s.RestartCount
		}
	}
	return 0
}

// targetContainerID is the target's container ID without the runtime
// prefix, where the pod shares one PID namespace among its containers
// (its PID 1 is then the pause process, not the target's); "" otherwise.
func (h *helper) targetContainerID() string {
	if h.pod.Spec.ShareProcessNamespace == nil || !*h.pod.Spec.ShareProcessNamespace {
		return ""
	}
	for _, s := range h.pod.Status.ContainerStatuses {
		if s.Name == h.target {
			_, id, _ := strings.Cut(s.ContainerID, "://")
			return id
		}
	}
	return ""
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
