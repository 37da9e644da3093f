package target

import "context"

// CRI's methods ephem calls.
const (
	criService         = "/runtime.v1.RuntimeService/"
	criVersionMethod   = criService + "Version"
	criListContainers  = criService + "ListContainers"
	criListPodSandbox  = criService + "ListPodSandbox"
	criContainerStatus = criService + "ContainerStatus"
)

// h2Invoke calls method with req on h and returns its answer, or its
// gRPC status error (h2Client.call).
func h2Invoke[T any, P interface {
	*T
	pbDecoder
}](ctx context.Context, h *h2Client, method string, req []byte) (*T, error) {
	out := P(new(T))
	if err := h.call(ctx, "", method, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// criVersionOf asks h's runtime its name (RuntimeService.Version).
func criVersionOf(ctx context.Context, h *h2Client) (string, error) {
	v, err := h2Invoke[criVersion](ctx, h, criVersionMethod, nil)
	if err != nil {
		return "", err
	}
	return v.runtimeName, nil
}

// listContainers is RuntimeService.ListContainers, of the running
// containers only when running is set.
func (c *CRIClient) listContainers(ctx context.Context, running bool) (criContainerList, error) {
	l, err := h2Invoke[criContainerList](ctx, c.h2, criListContainers, criListContainersReq(running))
	if err != nil {
		return nil, err
	}
	return *l, nil
}

// listSandboxes is RuntimeService.ListPodSandbox, of every sandbox.
func (c *CRIClient) listSandboxes(ctx context.Context) (criSandboxList, error) {
	l, err := h2Invoke[criSandboxList](ctx, c.h2, criListPodSandbox, criListSandboxesReq(false))
	if err != nil {
		return nil, err
	}
	return *l, nil
}

// containerStatus is RuntimeService.ContainerStatus, verbose.
func (c *CRIClient) containerStatus(ctx context.Context, id string) (*criStatus, error) {
	return h2Invoke[criStatus](ctx, c.h2, criContainerStatus, criContainerStatusReq(id))
}
