package e2eutil

import "testing"

func TestDockerHostFrom(t *testing.T) {
	tests := []struct {
		out, want string
		wantErr   bool
	}{
		{out: "DOCKER_API_VERSION=1.41\nDOCKER_HOST=unix:///run/ephem-test/docker.sock\n", want: "unix:///run/ephem-test/docker.sock"},
		{out: "DOCKER_HOST=unix:///x.sock", want: "unix:///x.sock"},
		{out: "DOCKER_HOST=unix:///x.sock\nsomething else\n", wantErr: true},
		{out: "", wantErr: true},
		{out: "DOCKER_HOST=\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := dockerHostFrom(tt.out)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("dockerHostFrom(%q) = %q, %v; want %q, error %v", tt.out, got, err, tt.want, tt.wantErr)
		}
	}
}
