package yamlpos

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExplain checks that yaml.v3's errors reach the operator with the
// right line and without Go type names.
func TestExplain(t *testing.T) {
	type doc struct {
		Release  string `yaml:"release"`
		Services map[string]struct {
			Image    string `yaml:"image"`
			Strategy string `yaml:"strategy"`
			Replicas int    `yaml:"replicas"`
		} `yaml:"services"`
	}
	tests := []struct {
		name, yaml string
		want       []string
		not        []string
	}{
		{"dedent to no block", "release: r1\nservices:\n  web:\n    image: web:v2\n   strategy: start-first\n",
			[]string{"f.yaml:5: not valid YAML:", "indentation of 3 spaces"}, nil},
		{"deeper block then a bad dedent", "release: r1\nservices:\n   web:\n    image: x\n  api:\n    image: y\n",
			[]string{"f.yaml:5:"}, nil},
		{"unknown field", "release: r1\nservices:\n  web:\n    imagee: x\n",
			[]string{"f.yaml:4: field imagee is not known here", "known: image"}, []string{"manifest.", "yamlpos.", "struct"}},
		{"wrong kind", "release: r1\nservices:\n  web:\n    replicas: many\n",
			[]string{"f.yaml:4: text \"many\" where a number is expected"}, []string{"!!str", "int"}},
		{"empty", "# nothing yet\n", []string{"f.yaml: the file is empty"}, []string{"EOF"}},
		{"block scalar lines are skipped", "release: |\n  a\n    b\n  c\nservices:\n  web:\n    image: x\n   strategy: y\n",
			[]string{"f.yaml:8:"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
			dec.KnownFields(true)
			err := Explain("f.yaml", []byte(tc.yaml), dec.Decode(&d), "known: image")
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Explain = %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q shows %q", err, n)
				}
			}
		})
	}
}

// FuzzExplain feeds any bytes through the YAML decoder and Explain: no
// panic, and every error names the file.
func FuzzExplain(f *testing.F) {
	f.Add("release: r1\nservices:\n  web:\n    image: x\n   strategy: y\n")
	f.Add("a: |\n  b\n    c\n d: [1,\n")
	f.Add("- - - x\n  -\n- :")
	f.Fuzz(func(t *testing.T, s string) {
		var v map[string]any
		if err := Explain("f.yaml", []byte(s), yaml.Unmarshal([]byte(s), &v), "k"); err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Errorf("error %q does not name the file", err)
		}
	})
}
