package kube

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// TestStrategicMergeAsApimachinery: --custom's merge gives what
// apimachinery's strategic merge patch gives, on a container that has
// every kind of field a patch may touch.
func TestStrategicMergeAsApimachinery(t *testing.T) {
	orig := `{"name":"debugger-x","image":"busybox","command":["sh"],"args":["-c","true"],
		"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],
		"envFrom":[{"configMapRef":{"name":"cm"}}],
		"ports":[{"containerPort":80,"protocol":"TCP"},{"containerPort":53,"protocol":"UDP"}],
		"volumeMounts":[{"name":"v","mountPath":"/v"},{"name":"w","mountPath":"/w","readOnly":true}],
		"resources":{"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"100m"}},
		"securityContext":{"runAsUser":0,"capabilities":{"add":["NET_ADMIN"],"drop":["ALL"]},"privileged":false},
		"stdin":true,"tty":true,"workingDir":"/"}`
	for _, patch := range []string{
		`{}`,
		`{"workingDir":"/tmp","stdin":false}`,
		`{"workingDir":null,"tty":null}`,
		`{"env":[{"name":"B","value":"two"},{"name":"C","value":"3"}]}`,
		`{"env":[{"name":"A","$patch":"delete"},{"name":"Z","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]}`,
		`{"env":[{"name":"A","value":null}]}`,
		`{"envFrom":[{"secretRef":{"name":"s"}}]}`,
		`{"ports":[{"containerPort":80,"name":"http"},{"containerPort":8080}]}`,
		`{"volumeMounts":[{"mountPath":"/w","readOnly":false},{"name":"x","mountPath":"/x"}]}`,
		`{"volumeMounts":[{"mountPath":"/v","$patch":"delete"}]}`,
		`{"resources":{"limits":{"memory":"2Gi","cpu":null},"requests":{"memory":"64Mi"}}}`,
		`{"resources":{"$patch":"replace","limits":{"cpu":"2"}}}`,
		`{"securityContext":{"capabilities":{"add":["SYS_PTRACE"]},"runAsUser":1000}}`,
		`{"securityContext":{"$patch":"delete"}}`,
		`{"securityContext":null}`,
		`{"args":["-c","echo hi"],"command":null}`,
		`{"lifecycle":{"preStop":{"exec":{"command":["true"]}}}}`,
		`{"startupProbe":{"exec":{"command":["true"]},"periodSeconds":3}}`,
		`{"env":[{"name":"C","value":"3"},{"name":"A","value":"one"}],"ports":[{"containerPort":53,"$patch":"delete"}]}`,
		`{"env":[{"name":"Q","$patch":"delete"}],"volumeMounts":[{"mountPath":"/new","name":"n"},{"mountPath":"/v","subPath":"s"}]}`,
	} {
		want, err := strategicpatch.StrategicMergePatch([]byte(orig), []byte(patch), corev1.Container{})
		if err != nil {
			t.Fatalf("apimachinery, %s: %v", patch, err)
		}
		got, err := strategicMerge([]byte(orig), []byte(patch), reflect.TypeFor[corev1.Container]())
		if err != nil {
			t.Errorf("%s: %v", patch, err)
			continue
		}
		var w, g any
		_ = json.Unmarshal(want, &w)
		_ = json.Unmarshal(got, &g)
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("%s (-apimachinery +ephem):\n%s", patch, d)
		}
	}
	for _, bad := range []string{`{"$retainKeys":["env"]}`, `{"$setElementOrder/env":[{"name":"A"}]}`, `{"env":[{"value":"no name"}]}`, `{"resources":{"$patch":"merge-ish"}}`} {
		if _, err := strategicMerge([]byte(orig), []byte(bad), reflect.TypeFor[corev1.Container]()); err == nil {
			t.Errorf("%s: merged, want an error", bad)
		}
	}
}
