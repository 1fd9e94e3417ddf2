package packaging

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/punchdrop/punchdrop/packaging/icons"
	"github.com/punchdrop/punchdrop/packaging/notices"
)

// needTool returns the path of an external program, skipping the test
// when it is missing, except under CI=true, where .ci/run installs it.
func needTool(t *testing.T, name, aptPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (apt-get install %s)", name, aptPackage)
	}
	t.Skipf("%s is missing (apt-get install %s)", name, aptPackage)
	return ""
}

func TestDesktopFilesValidate(t *testing.T) {
	validate := needTool(t, "desktop-file-validate", "desktop-file-utils")
	for _, f := range []string{"punchdrop.desktop", "punchdrop-autostart.desktop"} {
		out, err := exec.Command(validate, f).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 { // hints count as failures too
			t.Errorf("desktop-file-validate %s: %v\n%s", f, err, out)
		}
	}
}

// readINI parses a .desktop or systemd unit file into section -> key ->
// values (a key may repeat in a unit).
func readINI(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections := make(map[string]map[string][]string)
	var cur map[string][]string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = make(map[string][]string)
			sections[line[1:len(line)-1]] = cur
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil {
				t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", path, n, line)
			}
			cur[k] = append(cur[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sections
}

// wantKeys checks that section holds each key with exactly that value.
func wantKeys(t *testing.T, file string, section map[string][]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := section[k]; !slices.Equal(got, []string{v}) {
			t.Errorf("%s: %s=%q, want %q", file, k, got, v)
		}
	}
}

func TestDesktopEntries(t *testing.T) {
	app := readINI(t, "punchdrop.desktop")["Desktop Entry"]
	wantKeys(t, "punchdrop.desktop", app, map[string]string{
		"Type": "Application", "Exec": "punchdrop", "Icon": icons.App,
		"Categories": "Network;FileTransfer;", "Terminal": "false",
	})
	auto := readINI(t, "punchdrop-autostart.desktop")["Desktop Entry"]
	wantKeys(t, "punchdrop-autostart.desktop", auto, map[string]string{
		"Type": "Application", "Exec": "punchdrop", "Icon": icons.App,
		"X-GNOME-Autostart-enabled": "true", "NoDisplay": "true",
	})
}

func TestUserUnit(t *testing.T) {
	unit := readINI(t, "punchdrop.service")
	wantKeys(t, "punchdrop.service", unit["Service"], map[string]string{
		"ExecStart": "/usr/bin/punchdrop agent", "Restart": "on-failure",
	})
	wantKeys(t, "punchdrop.service", unit["Install"], map[string]string{"WantedBy": "default.target"})
	if unit["Unit"]["Description"] == nil {
		t.Error("punchdrop.service has no Description")
	}
	// A user manager has no system targets: ordering after them is a
	// silent no-op that suggests a guarantee it does not give.
	for _, k := range []string{"After", "Wants", "Requires"} {
		for _, v := range unit["Unit"][k] {
			if strings.Contains(v, "network") {
				t.Errorf("punchdrop.service: %s=%s names a system target", k, v)
			}
		}
	}
}

// nfpmContents returns the src -> dst pairs of nfpm.yaml's contents (one
// list entry per file, "- src:" then "dst:").
func nfpmContents(t *testing.T) [][2]string {
	t.Helper()
	var pairs [][2]string
	for _, line := range strings.Split(string(mustRead(t, "nfpm.yaml")), "\n") {
		line = strings.TrimSpace(line)
		if src, ok := strings.CutPrefix(line, "- src: "); ok {
			pairs = append(pairs, [2]string{src, ""})
		} else if dst, ok := strings.CutPrefix(line, "dst: "); ok {
			if len(pairs) == 0 || pairs[len(pairs)-1][1] != "" {
				t.Fatalf("nfpm.yaml: dst %q without its src", dst)
			}
			pairs[len(pairs)-1][1] = dst
		}
	}
	return pairs
}

func TestNFPMContents(t *testing.T) {
	pairs := nfpmContents(t)
	dsts := make(map[string]string)
	for _, p := range pairs {
		src, dst := p[0], p[1]
		if !strings.HasPrefix(dst, "/usr/") {
			t.Errorf("nfpm.yaml: %s goes to %q, outside /usr", src, dst)
		}
		dsts[dst] = src
		if strings.HasPrefix(src, "build/") {
			continue // made by make package
		}
		if _, err := os.Stat(filepath.Join("..", src)); err != nil {
			t.Errorf("nfpm.yaml: %v", err)
		}
	}
	want := []string{
		"/usr/bin/punchdrop",
		"/usr/lib/systemd/user/punchdrop.service",
		"/usr/share/applications/punchdrop.desktop",
		"/usr/share/punchdrop/punchdrop-autostart.desktop",
		"/usr/share/icons/hicolor/scalable/apps/punchdrop.svg",
		"/usr/share/man/man1/",
		"/usr/share/bash-completion/completions/punchdrop",
		"/usr/share/fish/vendor_completions.d/punchdrop.fish",
		"/usr/share/doc/punchdrop/copyright",
		"/usr/share/doc/punchdrop/THIRD_PARTY_NOTICES",
		"/usr/share/licenses/punchdrop/LICENSE",
		"/usr/share/licenses/punchdrop/THIRD_PARTY_NOTICES",
	}
	for _, size := range icons.Sizes {
		want = append(want, fmt.Sprintf("/usr/share/icons/hicolor/%dx%d/apps/punchdrop.png", size, size))
	}
	for _, dst := range want {
		if _, ok := dsts[dst]; !ok {
			t.Errorf("nfpm.yaml installs nothing as %s", dst)
		}
	}
}

// TestLicense checks that the packages declare the license that LICENSE
// holds, and ship that file.
func TestLicense(t *testing.T) {
	id, err := notices.Identify(mustRead(t, "../LICENSE"))
	if err != nil {
		t.Fatalf("LICENSE: %v", err)
	}
	var declared []string
	for _, line := range strings.Split(string(mustRead(t, "nfpm.yaml")), "\n") {
		if v, ok := strings.CutPrefix(line, "license:"); ok {
			declared = append(declared, strings.TrimSpace(v))
		}
	}
	if !slices.Equal(declared, []string{id}) {
		t.Errorf("nfpm.yaml says license %q, LICENSE is %s", declared, id)
	}
	for _, p := range nfpmContents(t) {
		if strings.HasSuffix(p[1], "/copyright") || strings.HasPrefix(p[1], "/usr/share/licenses/punchdrop/LICENSE") {
			if p[0] != "LICENSE" {
				t.Errorf("nfpm.yaml installs %s as %s, not LICENSE", p[0], p[1])
			}
		}
	}
}

func TestVersionScript(t *testing.T) {
	tests := []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-4-gabc1234", "1.2.3+git4.abc1234"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-rc1-4-gabc1234-dirty", "1.2.3~rc1+git4.abc1234.dirty"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"7d3011b", "0.0.0~git7d3011b"},
		{"7d3011b-dirty", "0.0.0~git7d3011b+dirty"},
		{"dev", "0.0.0~dev"},
		{"", "0.0.0~dev"},
		{"release/2", "0.0.0~release.2"},
	}
	_, dpkgErr := exec.LookPath("dpkg")
	for _, tt := range tests {
		out, err := exec.Command("sh", "version.sh", tt.in).Output()
		if err != nil {
			t.Fatalf("version.sh %q: %v", tt.in, err)
		}
		got := strings.TrimSpace(string(out))
		if got != tt.want {
			t.Errorf("version.sh %q = %q, want %q", tt.in, got, tt.want)
		}
		if dpkgErr == nil {
			if out, err := exec.Command("dpkg", "--validate-version", got).CombinedOutput(); err != nil {
				t.Errorf("dpkg rejects %q: %s", got, out)
			}
		}
	}
	if dpkgErr != nil {
		return
	}
	// Ordering: pre-release < release < later commits < next release.
	order := []string{"0.0.0~git7d3011b", "1.2.3~rc1", "1.2.3", "1.2.3+git4.abc1234", "1.2.4"}
	for i := range len(order) - 1 {
		if err := exec.Command("dpkg", "--compare-versions", order[i], "lt", order[i+1]).Run(); err != nil {
			t.Errorf("dpkg does not order %s before %s", order[i], order[i+1])
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
