package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestChangelog: CHANGELOG.yml is read by nfpm (chglog, a YAML library like
// this one) only when the packages are built; a note that YAML takes for
// something else (a ": " inside it makes a mapping) or that is too long for
// a Debian changelog line should fail here first.
func TestChangelog(t *testing.T) {
	b, err := os.ReadFile("CHANGELOG.yml")
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Semver   string `yaml:"semver"`
		Date     string `yaml:"date"`
		Packager string `yaml:"packager"`
		Changes  []struct {
			Note string `yaml:"note"`
		} `yaml:"changes"`
	}
	if err := yaml.Unmarshal(b, &entries); err != nil {
		t.Fatalf("CHANGELOG.yml: %v", err)
	}
	if len(entries) == 0 {
		t.Fatal("CHANGELOG.yml has no release")
	}
	var prev []int
	for _, e := range entries {
		v, err := semver(e.Semver)
		if err != nil {
			t.Errorf("semver %q: %v", e.Semver, err)
		}
		if prev != nil && slices.Compare(v, prev) >= 0 {
			t.Errorf("%s after %v: the newest release comes first", e.Semver, prev)
		}
		prev = v
		if _, err := time.Parse(time.RFC3339, e.Date); err != nil {
			t.Errorf("%s: date %q: %v", e.Semver, e.Date, err)
		}
		if e.Packager == "" || len(e.Changes) == 0 {
			t.Errorf("%s: no packager or no changes", e.Semver)
		}
		for _, c := range e.Changes {
			if c.Note == "" || len(c.Note) > 74 || strings.Contains(c.Note, "\n") {
				t.Errorf("%s: note %q: want one line of 1 to 74 characters", e.Semver, c.Note)
			}
		}
	}
}

func semver(s string) ([]int, error) {
	var v []int
	for _, f := range strings.Split(s, ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		v = append(v, n)
	}
	return v, nil
}
