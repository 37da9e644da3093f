package local

import (
	"os"
	"testing"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/google/go-cmp/cmp"
)

func TestNamespaceOfSelf(t *testing.T) {
	for _, ns := range nsTypes {
		n, err := namespace("/proc/self/ns/", os.Getpid(), ns)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.Readlink("/proc/self/ns/" + ns)
		if n.Target != want || n.Host != want || n.Shared == (ns == "mnt") || (ns == "mnt") != (n.Debug == "") {
			t.Errorf("%s: %+v, want target and host %s, shared unless mnt", ns, n, want)
		}
	}
}

func TestProcParsing(t *testing.T) {
	f := statusFields([]byte("Name:\tserver\nCapEff:\t00000000a80425fb\nSeccomp:\t2\nNSpid:\t4242\t1\n"))
	if f["CapEff"] != "00000000a80425fb" || runtime.SeccompMode(f["Seccomp"]) != "filter" || f["NSpid"] != "4242\t1" {
		t.Errorf("statusFields = %q", f)
	}
	if got := initOf(4242, f); got != 4242 {
		t.Errorf("initOf a namespace's PID 1 = %d, want itself", got)
	}
	got := lines([]byte("         0     100000      65536\n\n"), true)
	if diff := cmp.Diff([]string{"0 100000 65536"}, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	for v, want := range map[string]string{"0": "disabled", "1": "strict", "": "unknown"} {
		if got := runtime.SeccompMode(v); got != want {
			t.Errorf("runtime.SeccompMode(%q) = %q, want %q", v, got, want)
		}
	}
}
