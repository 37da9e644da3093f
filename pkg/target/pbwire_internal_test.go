package target

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	containers "github.com/containerd/containerd/api/services/containers/v1"
	namespaces "github.com/containerd/containerd/api/services/namespaces/v1"
	snapshots "github.com/containerd/containerd/api/services/snapshots/v1"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	ctrdtypes "github.com/containerd/containerd/api/types"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The hand-encoded requests are what the generated code decodes to the
// intended message; the generated code's answers, with every field ephem
// skips set too, decode to what ephem reads.

func TestPBRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want proto.Message
	}{
		{"ListContainers running", criListContainersReq(true), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}}},
		{"ListContainers all", criListContainersReq(false), &runtimeapi.ListContainersRequest{}},
		{"ListPodSandbox ready", criListSandboxesReq(true), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
			State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}}},
		{"ListPodSandbox all", criListSandboxesReq(false), &runtimeapi.ListPodSandboxRequest{}},
		{"ContainerStatus", criContainerStatusReq(idA), &runtimeapi.ContainerStatusRequest{ContainerId: idA, Verbose: true}},
		{"Tasks.Get", ctrdIDReq(idA), &tasks.GetRequest{ContainerID: idA}},
		{"Containers.Get", ctrdIDReq(idB), &containers.GetContainerRequest{ID: idB}},
		{"Containers.ListStream", ctrdListReq([]string{"id~=x", `labels."a"=="b"`}), &containers.ListContainersRequest{Filters: []string{"id~=x", `labels."a"=="b"`}}},
		{"Snapshots.Mounts", ctrdMountsReq("overlayfs", "k"), &snapshots.MountsRequest{Snapshotter: "overlayfs", Key: "k"}},
	} {
		got := tc.want.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(tc.got, got); err != nil || !proto.Equal(got, tc.want) {
			t.Errorf("%s: %x decodes to %v (%v), want %v", tc.name, tc.got, got, err, tc.want)
		}
		// Presence matters: SANDBOX_READY is 0, so its filter is an empty
		// message that must be there.
		if want, _ := proto.Marshal(tc.want); string(want) != string(tc.got) {
			t.Errorf("%s: encoded %x, the generated code %x", tc.name, tc.got, want)
		}
	}
}

func TestPBAnswers(t *testing.T) {
	labels := map[string]string{"io.kubernetes.pod.name": "web", NerdctlNameLabel: "nginx"}
	exited := time.Date(2026, 12, 3, 4, 5, 6, 7, time.UTC)
	for _, tc := range []struct {
		name string
		msgs []proto.Message // one, or a stream's
		dst  pbDecoder
		want any
	}{
		{"Version", []proto.Message{&runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "cri-o", RuntimeVersion: "1.34", RuntimeApiVersion: "v1"}},
			&criVersion{}, &criVersion{runtimeName: "cri-o"}},
		{"ListContainers", []proto.Message{&runtimeapi.ListContainersResponse{Containers: []*runtimeapi.Container{
			{Id: idA, PodSandboxId: idB, Metadata: &runtimeapi.ContainerMetadata{Name: "app", Attempt: 2}, Image: &runtimeapi.ImageSpec{Image: "x"},
				ImageRef: "sha256:1", State: runtimeapi.ContainerState_CONTAINER_RUNNING, CreatedAt: 1764730000123456789, Labels: labels,
				Annotations: map[string]string{"a": "b"}},
			{Id: idB, CreatedAt: -1},
		}}}, &criContainerList{}, &criContainerList{
			{id: idA, podSandboxID: idB, name: "app", createdAt: 1764730000123456789, labels: labels},
			{id: idB, createdAt: -1},
		}},
		{"ListPodSandbox", []proto.Message{&runtimeapi.ListPodSandboxResponse{Items: []*runtimeapi.PodSandbox{
			{Id: idA, Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Uid: "u", Namespace: "ns", Attempt: 1},
				State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, CreatedAt: 5, Labels: labels, RuntimeHandler: "runc"},
		}}}, &criSandboxList{}, &criSandboxList{{id: idA, name: "web", namespace: "ns", createdAt: 5}}},
		{"ContainerStatus", []proto.Message{&runtimeapi.ContainerStatusResponse{
			Status: &runtimeapi.ContainerStatus{Id: idA, Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, State: runtimeapi.ContainerState_CONTAINER_EXITED,
				ExitCode: -1, Reason: "Error", Mounts: []*runtimeapi.Mount{{ContainerPath: "/x"}}},
			Info: map[string]string{"info": `{"pid": 42}`},
		}}, &criStatus{}, &criStatus{id: idA, state: criContainerExited, info: map[string]string{"info": `{"pid": 42}`}}},
		{"Tasks.Get", []proto.Message{&tasks.GetResponse{Process: &tasktypes.Process{ContainerID: idA, ID: idA, Pid: 4242,
			Status: tasktypes.Status_STOPPED, Stdout: "/x", Terminal: true, ExitStatus: 137, ExitedAt: timestamppb.New(exited)}}},
			&ctrdProcess{}, &ctrdProcess{pid: 4242, status: 3, exitStatus: 137, exitedAt: exited}},
		{"Containers.ListStream", []proto.Message{
			&containers.ListContainerMessage{Container: &containers.Container{ID: idA, Labels: labels, Image: "docker.io/library/nginx:latest",
				Runtime: &containers.Container_Runtime{Name: "io.containerd.runc.v2"}, Spec: &anypb.Any{TypeUrl: "t", Value: []byte{1, 2}},
				Snapshotter: "overlayfs", SnapshotKey: idA, CreatedAt: timestamppb.New(exited)}},
			&containers.ListContainerMessage{Container: &containers.Container{ID: idB}},
		}, &ctrdContainerList{}, &ctrdContainerList{
			{id: idA, image: "docker.io/library/nginx:latest", snapshotter: "overlayfs", snapshotKey: idA, labels: labels},
			{id: idB},
		}},
		{"Namespaces.List", []proto.Message{&namespaces.ListNamespacesResponse{Namespaces: []*namespaces.Namespace{
			{Name: "default", Labels: labels}, {Name: "k8s.io"}}}}, &ctrdNamespaces{}, &ctrdNamespaces{"default", "k8s.io"}},
		{"Snapshots.Mounts", []proto.Message{&snapshots.MountsResponse{Mounts: []*ctrdtypes.Mount{
			{Type: "overlay", Source: "overlay", Target: "/t", Options: []string{"index=off", "lowerdir=/a:/b", "upperdir=/u"}}}}},
			&ctrdMounts{}, &ctrdMounts{{typ: "overlay", source: "overlay", options: []string{"index=off", "lowerdir=/a:/b", "upperdir=/u"}}}},
	} {
		for _, m := range tc.msgs {
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.dst.decode(b); err != nil {
				t.Fatalf("%s: decoding: %v", tc.name, err)
			}
		}
		if !reflect.DeepEqual(tc.dst, tc.want) {
			t.Errorf("%s: decoded %+v, want %+v", tc.name, tc.dst, tc.want)
		}
	}
}

func TestPBMalformed(t *testing.T) {
	for _, b := range [][]byte{
		{0x0a},                   // field 1, no length
		{0x0a, 0x05, 0x01},       // length past the end
		{0x08},                   // varint cut
		{0x00, 0x01},             // field 0
		{0x0b},                   // a group
		{0x09, 1, 2, 3},          // fixed64 cut
		{0x0a, 0x02, 0x0a, 0x09}, // nested: a length past its message
	} {
		var l ctrdContainerList
		if err := l.decode(b); !errors.Is(err, errPBMalformed) {
			t.Errorf("decoding %x = %v, want errPBMalformed", b, err)
		}
	}
}

// TestPBHostile: a runtime socket that answers garbage (random bytes, and
// real answers cut or with one byte changed) makes every decoder return
// or fail, never panic or read out of bounds; lengths are checked against
// what is there before anything is allocated for them.
func TestPBHostile(t *testing.T) {
	answer, err := proto.Marshal(&runtimeapi.ListContainersResponse{Containers: []*runtimeapi.Container{
		{Id: idA, PodSandboxId: idB, Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Labels: map[string]string{"a": "b"}, CreatedAt: 7}}})
	if err != nil {
		t.Fatal(err)
	}
	decoders := func() []pbDecoder {
		return []pbDecoder{&criVersion{}, &criContainerList{}, &criSandboxList{}, &criStatus{}, &ctrdProcess{},
			&ctrdContainerList{}, &ctrdNamespaces{}, &ctrdMounts{}}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := [][]byte{{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}}
	for range 3000 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		inputs = append(inputs, b)
		m := slices.Clone(answer)
		m[rng.IntN(len(m))] = byte(rng.UintN(256))
		inputs = append(inputs, m, answer[:rng.IntN(len(answer))])
	}
	for _, in := range inputs {
		for _, d := range decoders() {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("%T.decode(%x) panicked: %v", d, in, r)
					}
				}()
				_ = d.decode(in)
			}()
		}
	}
}
