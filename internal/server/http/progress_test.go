package httpapi_test

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/agentkernel-go/agentkernel/internal/image/imagetest"
)

// An image not in the store is pulled before the command runs, its layers
// reported as progress events between started and the output.
func TestRunStreamReportsPullProgress(t *testing.T) {
	reg := imagetest.NewRegistry(t)
	ref := reg.Ref("test/stream:1")
	reg.Push(ref, imagetest.Image(t, v1.Config{Env: []string{"PATH=/bin"}}, imagetest.BusyboxLayer(t, "streamed")))
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	a := newAPIEnv(t, map[string]string{"AGENTKERNEL_INSECURE_REGISTRIES": reg.Host})

	resp, events := streamRun(t, t.Context(), a, `{"command": ["cat", "/etc/os-release"], "image": "`+ref+`"}`)
	defer resp.Body.Close()
	var names []string
	var output string
	layerDone := false
	for ev := range events {
		names = append(names, ev.name)
		switch ev.name {
		case "progress":
			if ev.data["stage"] != "pull" || ev.data["image"] != ref || !strings.HasPrefix(ev.data["layer"].(string), "sha256:") {
				t.Errorf("progress event %v", ev.data)
			}
			layerDone = layerDone || ev.data["done"] == true
		case "output":
			output += ev.data["data"].(string)
		}
	}
	seq := strings.Join(names, " ")
	if !strings.HasPrefix(seq, "started progress") || !strings.HasSuffix(seq, "done") || !layerDone {
		t.Fatalf("events: %s", seq)
	}
	if !strings.Contains(output, "ID=streamed") {
		t.Fatalf("output %q", output)
	}
	// Cached now: no progress the second time.
	resp2, events2 := streamRun(t, t.Context(), a, `{"command": ["true"], "image": "`+ref+`"}`)
	defer resp2.Body.Close()
	for ev := range events2 {
		if ev.name == "progress" {
			t.Fatalf("a cached image reported pull progress: %v", ev.data)
		}
	}
}
