package target

import (
	"context"

	"google.golang.org/protobuf/proto"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// h2Runtime is the CRI runtime service over an h2Client: the calls ephem
// makes, each one round trip on the client's connection.
type h2Runtime struct {
	// RuntimeServiceClient is nil: only the methods below are called.
	runtimeapi.RuntimeServiceClient
	h *h2Client
}

// CRI's methods ephem calls.
const (
	criService         = "/runtime.v1.RuntimeService/"
	criVersionMethod   = criService + "Version"
	criListContainers  = criService + "ListContainers"
	criListPodSandbox  = criService + "ListPodSandbox"
	criContainerStatus = criService + "ContainerStatus"
)

// Version is RuntimeService.Version.
func (r h2Runtime) Version(ctx context.Context, in *runtimeapi.VersionRequest, _ ...grpc.CallOption) (*runtimeapi.VersionResponse, error) {
	return h2Invoke(ctx, r.h, criVersionMethod, in, new(runtimeapi.VersionResponse))
}

// ListContainers is RuntimeService.ListContainers.
func (r h2Runtime) ListContainers(ctx context.Context, in *runtimeapi.ListContainersRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	return h2Invoke(ctx, r.h, criListContainers, in, new(runtimeapi.ListContainersResponse))
}

// ListPodSandbox is RuntimeService.ListPodSandbox.
func (r h2Runtime) ListPodSandbox(ctx context.Context, in *runtimeapi.ListPodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.ListPodSandboxResponse, error) {
	return h2Invoke(ctx, r.h, criListPodSandbox, in, new(runtimeapi.ListPodSandboxResponse))
}

// ContainerStatus is RuntimeService.ContainerStatus.
func (r h2Runtime) ContainerStatus(ctx context.Context, in *runtimeapi.ContainerStatusRequest, _ ...grpc.CallOption) (*runtimeapi.ContainerStatusResponse, error) {
	return h2Invoke(ctx, r.h, criContainerStatus, in, new(runtimeapi.ContainerStatusResponse))
}

// h2Invoke calls method with in and returns its answer, or a gRPC error
// (grpcError), as a gRPC client's method does.
func h2Invoke[T proto.Message](ctx context.Context, h *h2Client, method string, in proto.Message, out T) (T, error) {
	if err := grpcError(ctx, h.call(ctx, "", method, in, out)); err != nil {
		var none T
		return none, err
	}
	return out, nil
}
