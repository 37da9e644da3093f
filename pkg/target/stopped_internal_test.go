package target

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDockerStopped(t *testing.T) {
	const crashed = `{"Name":"/crashed","State":{"Running":false,"Status":"exited","ExitCode":3,"FinishedAt":"2026-12-02T16:20:01.123456Z"},
		"GraphDriver":{"Name":"overlay2","Data":{"UpperDir":"/d/overlay2/abc/diff","LowerDir":"/d/overlay2/abc-init/diff:/d/overlay2/img/diff"}}}`
	for _, tc := range []struct {
		name, json string
		want       *Filesystem
		says       string
	}{
		{name: "crashed", json: crashed, want: &Filesystem{
			Layers: []string{"/d/overlay2/abc/diff", "/d/overlay2/abc-init/diff", "/d/overlay2/img/diff"},
			State:  "exited with code 3 at 2026-12-02T16:20:01Z"}},
		{name: "created", json: `{"State":{"Status":"created","FinishedAt":"0001-01-01T00:00:00Z"},
			"GraphDriver":{"Name":"overlay2","Data":{"UpperDir":"/d/u"}}}`,
			want: &Filesystem{Layers: []string{"/d/u"}, State: "created, never started"}},
		{name: "restarting", json: strings.Replace(crashed, `"Running":false`, `"Restarting":true`, 1), want: &Filesystem{
			Layers: []string{"/d/overlay2/abc/diff", "/d/overlay2/abc-init/diff", "/d/overlay2/img/diff"},
			State:  "restarting, exited with code 3 at 2026-12-02T16:20:01Z"}},
		{name: "vfs", json: `{"State":{"Status":"exited"},"GraphDriver":{"Name":"vfs"}}`, says: "storage driver is vfs"},
		{name: "snapshotter", json: `{"State":{"Status":"exited"}}`, says: "containerd image store"},
		{name: "relative", json: `{"State":{"Status":"exited"},"GraphDriver":{"Name":"overlay2","Data":{"UpperDir":"d/u"}}}`,
			says: "not a plain absolute path"},
		{name: "comma", json: `{"State":{"Status":"exited"},"GraphDriver":{"Name":"overlay2","Data":{"UpperDir":"/d/u,x=y"}}}`,
			says: "not a plain absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in dockerInspect
			if err := json.Unmarshal([]byte(tc.json), &in); err != nil {
				t.Fatal(err)
			}
			p, err := dockerStopped(tc.name, in)
			if tc.says != "" {
				if !errors.Is(err, ErrNoLayers) || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("dockerStopped = %v, want ErrNoLayers saying %q", err, tc.says)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Process{Description: "docker container " + tc.name, Stopped: tc.want}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("dockerStopped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMountLayers(t *testing.T) {
	for _, tc := range []struct {
		typ, source string
		options     []string
		want        []string
	}{
		{"overlay", "overlay", []string{"index=off", "workdir=/s/2/work", "upperdir=/s/2/fs", "lowerdir=/s/1/fs:/s/0/fs"}, []string{"/s/2/fs", "/s/1/fs", "/s/0/fs"}},
		{"overlay", "overlay", []string{"lowerdir=/s/1/fs:/s/0/fs"}, []string{"/s/1/fs", "/s/0/fs"}},
		{"bind", "/s/1/fs", []string{"rbind", "rw"}, []string{"/s/1/fs"}},
		{"btrfs", "/dev/x", nil, nil},
	} {
		if got := mountLayers(tc.typ, tc.source, tc.options); !cmp.Equal(tc.want, got) {
			t.Errorf("mountLayers(%s, %v) = %v, want %v", tc.typ, tc.options, got, tc.want)
		}
	}
}

func TestTaskState(t *testing.T) {
	at := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	if got := taskState("stopped", 5, at); got != "exited with code 5 at 2026-12-02T16:00:00Z" {
		t.Errorf("taskState(stopped) = %q", got)
	}
	if got := taskState("created", 0, time.Time{}); got != "its task is created" {
		t.Errorf("taskState(created) = %q", got)
	}
}
