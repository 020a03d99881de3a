package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/test/plexustest"
)

// finalStage returns the Dockerfile with its build stage replaced by one
// that holds out/ (what deploy/image-rootfs.sh laid out on the host): the
// build stage starts FROM a Go image, which cannot be pulled here. The
// final stage, what the image is, is kept as written.
func finalStage(t *testing.T, dockerfile []byte) []byte {
	t.Helper()
	lines := strings.Split(string(dockerfile), "\n")
	var froms []int
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			froms = append(froms, i)
		}
	}
	if len(froms) != 2 || !strings.HasSuffix(lines[froms[0]], " AS build") || lines[froms[1]] != "FROM scratch" {
		t.Fatalf("Dockerfile: want two stages, FROM … AS build and FROM scratch; the FROM lines are at %v", froms)
	}
	head := "FROM scratch AS build\nCOPY out/ /out/\n"
	return []byte(head + strings.Join(lines[froms[1]:], "\n"))
}

// podman runs podman (or buildah) and returns its standard output.
func podman(t *testing.T, prog string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(prog), strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.String(), nil
}

// TestImage builds the image's final stage from binaries built on the
// host by the same script as the Dockerfile's build stage, checks its
// configuration, runs it as a user would (ports published, the data
// volume), waits for its HEALTHCHECK to pass, and stops it with SIGTERM.
func TestImage(t *testing.T) {
	t.Parallel()
	buildah := plexustest.NeedProgram(t, "buildah", "buildah")
	pod := plexustest.NeedProgram(t, "podman", "podman")
	dir := root(t)

	ctxDir := t.TempDir()
	version := "test-" + channels.RandomHex(4)
	script := filepath.Join(dir, "deploy", "image-rootfs.sh")
	if out, err := exec.Command(script, filepath.Join(ctxDir, "out"), version).CombinedOutput(); err != nil {
		t.Fatalf("deploy/image-rootfs.sh: %v\n%s", err, out)
	}
	dockerfile, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), finalStage(t, dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	image := "localhost/plexus-test:" + version
	// Docker's format: OCI images drop HEALTHCHECK.
	if _, err := podman(t, buildah, "bud", "--quiet", "--format", "docker", "-t", image, ctxDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { podman(t, pod, "rmi", "-f", image) })

	// The image as the Dockerfile says.
	out, err := podman(t, pod, "image", "inspect", image)
	if err != nil {
		t.Fatal(err)
	}
	var inspect []struct {
		Config struct {
			User         string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
			Entrypoint   []string
			Env          []string
		}
		Healthcheck struct{ Test []string }
	}
	if err := json.Unmarshal([]byte(out), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	cfg := inspect[0].Config
	if cfg.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532 (not root)", cfg.User)
	}
	var ports []string
	for p := range cfg.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	if want := []string{"6001/tcp", "6001/udp", "6514/tcp", "8001/tcp", "8601/tcp"}; !reflect.DeepEqual(ports, want) {
		t.Errorf("ExposedPorts = %v, want %v", ports, want)
	}
	if _, ok := cfg.Volumes["/data"]; !ok || len(cfg.Volumes) != 1 {
		t.Errorf("Volumes = %v, want /data", cfg.Volumes)
	}
	if !reflect.DeepEqual(cfg.Entrypoint, []string{"/plexus"}) {
		t.Errorf("Entrypoint = %q, want [/plexus]", cfg.Entrypoint)
	}
	if hc := inspect[0].Healthcheck.Test; len(hc) < 2 || hc[0] != "CMD" || hc[1] != "/plexus-healthcheck" {
		t.Errorf("Healthcheck = %q, want CMD /plexus-healthcheck …", hc)
	}

	// Run it. This machine's crun cannot start containers (hybrid cgroups)
	// where runc can, and the sandbox cannot raise rlimits: lower ones are
	// asked for.
	var global []string
	if runc := plexustest.LookProgram("runc"); runc != "" {
		global = []string{"--runtime", runc}
	}
	name := "plexus-test-" + channels.RandomHex(4)
	run := append(append([]string{}, global...), "run", "-d", "--name", name,
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"-p", "127.0.0.1::8001", "-p", "127.0.0.1::8601", "-p", "127.0.0.1::6001",
		image)
	if _, err := podman(t, pod, run...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command(pod, "logs", name).CombinedOutput()
			t.Logf("container logs:\n%s", logs)
		}
		podman(t, pod, append(append([]string{}, global...), "rm", "-f", name)...)
	})

	// Healthy within 20 s: the probe in the image answers 0.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := podman(t, pod, append(append([]string{}, global...), "healthcheck", "run", name)...)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after 20 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Reachable through the published port; the admin key it generated
	// went into the volume (the unprivileged user can write /data).
	port, err := podman(t, pod, "port", name, "8001/tcp")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+strings.TrimSpace(port)+"/v3/healthcheck", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v3/healthcheck on the published port %s: %v", port, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v3/healthcheck = %s %q, want 200", resp.Status, body)
	}
	logs, _ := exec.Command(pod, "logs", name).CombinedOutput()
	if !bytes.Contains(logs, []byte("/data/auth_key")) || !bytes.Contains(logs, []byte(`"version":"`+version+`"`)) {
		t.Errorf("logs name neither the generated key in /data nor version %s:\n%s", version, logs)
	}

	// docker stop: SIGTERM, an ordered shutdown, exit 0.
	if _, err := podman(t, pod, append(append([]string{}, global...), "stop", "-t", "45", name)...); err != nil {
		t.Fatal(err)
	}
	code, err := podman(t, pod, "inspect", "--format", "{{.State.ExitCode}}", name)
	if err != nil || strings.TrimSpace(code) != "0" {
		t.Errorf("exit code after SIGTERM = %q, %v; want 0", code, err)
	}
}
