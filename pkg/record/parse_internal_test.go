package record

import "testing"

func TestResizeData(t *testing.T) {
	for s, want := range map[string]bool{"80x24": true, "1x1": true, "200x10000": true,
		"": false, "x": false, "80x": false, "x24": false, "080x24": false, "80x024": false, "0x24": false,
		"80X24": false, "80x24x1": false, "-1x2": false, " 80x24": false} {
		if got := resizeData(s); got != want {
			t.Errorf("resizeData(%q) = %v, want %v", s, got, want)
		}
	}
}
