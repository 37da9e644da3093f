package target

import "time"

// pbDecoder is an answer ephem reads: it decodes one message of the
// wire format (pbwire.go) into itself. A streamed answer's messages are
// decoded one after the other into the same value.
type pbDecoder interface {
	decode(msg []byte) error
}

// The requests, encoded. Field numbers are those of
// k8s.io/cri-api/pkg/apis/runtime/v1/api.proto and of containerd's
// api/services/*/v1/*.proto.

// criListContainersReq is a ListContainersRequest, for the running
// containers only when running is set (filter.state.state = RUNNING).
func criListContainersReq(running bool) []byte {
	if !running {
		return nil
	}
	state := pbUint(nil, 1, criContainerRunning)
	return pbBytes(nil, 1, pbBytes(nil, 2, state))
}

// criListSandboxesReq is a ListPodSandboxRequest, for the ready sandboxes
// only when ready is set (filter.state present: SANDBOX_READY is 0).
func criListSandboxesReq(ready bool) []byte {
	if !ready {
		return nil
	}
	return pbBytes(nil, 1, pbBytes(nil, 2, nil))
}

// criContainerStatusReq is a verbose ContainerStatusRequest for id.
func criContainerStatusReq(id string) []byte {
	return pbUint(pbString(nil, 1, id), 2, 1)
}

// ctrdIDReq is a request whose field 1 is an ID: tasks' GetRequest,
// containers' GetContainerRequest.
func ctrdIDReq(id string) []byte { return pbString(nil, 1, id) }

// ctrdListReq is containers' ListContainersRequest with filters.
func ctrdListReq(filters []string) []byte {
	var b []byte
	for _, f := range filters {
		b = pbBytes(b, 1, []byte(f))
	}
	return b
}

// ctrdMountsReq is snapshots' MountsRequest.
func ctrdMountsReq(snapshotter, key string) []byte {
	return pbString(pbString(nil, 1, snapshotter), 2, key)
}

// CRI's ContainerState values, and their names.
const (
	criContainerCreated = iota
	criContainerRunning
	criContainerExited
	criContainerUnknown
)

var criStateNames = [...]string{"created", "running", "exited", "unknown"}

// criStateName names a ContainerState for messages.
func criStateName(s uint64) string {
	if s < uint64(len(criStateNames)) {
		return criStateNames[s]
	}
	return "unknown"
}

// criVersion is a VersionResponse: the runtime's name.
type criVersion struct{ runtimeName string }

func (v *criVersion) decode(b []byte) error {
	return pbFields(b, map[int]any{2: &v.runtimeName})
}

// criContainer is what ephem reads of a CRI Container.
type criContainer struct {
	id, podSandboxID, name string
	createdAt              int64
	labels                 map[string]string
}

// criContainerList is a ListContainersResponse.
type criContainerList []criContainer

func (l *criContainerList) decode(b []byte) error {
	return pbFields(b, map[int]any{1: func(m []byte) error {
		var c criContainer
		var created uint64
		err := pbFields(m, map[int]any{1: &c.id, 2: &c.podSandboxID, 7: &created, 8: &c.labels,
			3: func(md []byte) error { return pbFields(md, map[int]any{1: &c.name}) }})
		c.createdAt = int64(created)
		*l = append(*l, c)
		return err
	}})
}

// criSandbox is what ephem reads of a CRI PodSandbox.
type criSandbox struct {
	id, name, namespace string
	createdAt           int64
}

// criSandboxList is a ListPodSandboxResponse.
type criSandboxList []criSandbox

func (l *criSandboxList) decode(b []byte) error {
	return pbFields(b, map[int]any{1: func(m []byte) error {
		var s criSandbox
		var created uint64
		err := pbFields(m, map[int]any{1: &s.id, 4: &created,
			2: func(md []byte) error { return pbFields(md, map[int]any{1: &s.name, 3: &s.namespace}) }})
		s.createdAt = int64(created)
		*l = append(*l, s)
		return err
	}})
}

// criStatus is a ContainerStatusResponse: the container's ID and state,
// and the verbose info.
type criStatus struct {
	id    string
	state uint64
	info  map[string]string
}

func (s *criStatus) decode(b []byte) error {
	return pbFields(b, map[int]any{2: &s.info, 1: func(st []byte) error {
		return pbFields(st, map[int]any{1: &s.id, 3: &s.state})
	}})
}

// containerd's task Status values, and their names.
const ctrdTaskRunning = 2

var ctrdStatusNames = [...]string{"unknown", "created", "running", "stopped", "paused", "pausing"}

// ctrdStatusName names a task Status for messages.
func ctrdStatusName(s uint64) string {
	if s < uint64(len(ctrdStatusNames)) {
		return ctrdStatusNames[s]
	}
	return "unknown"
}

// ctrdProcess is what ephem reads of tasks' GetResponse: its process.
type ctrdProcess struct {
	pid, status, exitStatus uint64
	exitedAt                time.Time
}

func (p *ctrdProcess) decode(b []byte) error {
	return pbFields(b, map[int]any{1: func(m []byte) error {
		return pbFields(m, map[int]any{3: &p.pid, 4: &p.status, 9: &p.exitStatus, 10: func(ts []byte) error {
			var sec, nsec uint64
			err := pbFields(ts, map[int]any{1: &sec, 2: &nsec})
			p.exitedAt = time.Unix(int64(sec), int64(int32(nsec))).UTC()
			return err
		}})
	}})
}

// ctrdContainer is what ephem reads of a containerd Container.
type ctrdContainer struct {
	id, image, snapshotter, snapshotKey string
	labels                              map[string]string
}

// ctrdContainerList is containers' ListContainersResponse, or the
// messages of ListStream, or GetContainerResponse: field 1 holds a
// Container in each.
type ctrdContainerList []ctrdContainer

func (l *ctrdContainerList) decode(b []byte) error {
	return pbFields(b, map[int]any{1: func(m []byte) error {
		var c ctrdContainer
		err := pbFields(m, map[int]any{1: &c.id, 2: &c.labels, 3: &c.image, 6: &c.snapshotter, 7: &c.snapshotKey})
		*l = append(*l, c)
		return err
	}})
}

// ctrdNamespaces is namespaces' ListNamespacesResponse: their names.
type ctrdNamespaces []string

func (l *ctrdNamespaces) decode(b []byte) error {
	return pbFields(b, map[int]any{1: func(m []byte) error {
		var name string
		err := pbFields(m, map[int]any{1: &name})
		*l = append(*l, name)
		return err
	}})
}

// ctrdMount is a containerd Mount.
type ctrdMount struct {
	typ, source string
	options     []string
}

// ctrdMounts is snapshots' MountsResponse.
type ctrdMounts []ctrdMount

func (l *ctrdMounts) decode(b []byte) error {
	return pbFields(b, map[int]any{1: func(m []byte) error {
		var mt ctrdMount
		err := pbFields(m, map[int]any{1: &mt.typ, 2: &mt.source, 4: &mt.options})
		*l = append(*l, mt)
		return err
	}})
}
