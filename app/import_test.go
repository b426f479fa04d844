package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"factstream/store"
	"factstream/store/bolt"
	"factstream/store/storetest"
)

// exportOf is facts as GET /admin/export writes them.
func exportOf(facts []store.Fact) string {
	var b []byte
	for _, f := range facts {
		b = append(f.AppendJSON(b), '\n')
	}
	return string(b)
}

func boltFacts(t *testing.T, path string) []store.Fact {
	t.Helper()
	st, err := bolt.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Range(context.Background(), 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func runImport(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), append([]string{"import"}, args...), func(string) string { return "" }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestImportLoadsAnExportIntoANewBoltFile(t *testing.T) {
	dir := t.TempDir()
	facts := storetest.ExportedFacts(40)
	in := filepath.Join(dir, "export.ndjson")
	if err := os.WriteFile(in, []byte(exportOf(facts)), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "facts.db")
	code, out, errOut := runImport(t, "--store", "bolt:"+db, in)
	if code != 0 || !strings.Contains(out, "imported 40 facts, seqs 1 to 40") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := boltFacts(t, db); !reflect.DeepEqual(got, facts) {
		t.Fatalf("the file holds %v;\nwant %v", got, facts)
	}
}

func TestImportFromStandardInput(t *testing.T) {
	facts := storetest.ExportedFacts(3)
	db := filepath.Join(t.TempDir(), "facts.db")
	var out, errOut bytes.Buffer
	code := Import(context.Background(), []string{"--store", "bolt:" + db, "-"}, func(string) string { return "" },
		strings.NewReader(exportOf(facts)), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if got := boltFacts(t, db); !reflect.DeepEqual(got, facts) {
		t.Fatalf("the file holds %v, want %v", got, facts)
	}
}

func TestImportRefusesABadInputAndStoresNothing(t *testing.T) {
	good := storetest.ExportedFacts(5)
	lines := strings.Split(strings.TrimSuffix(exportOf(good), "\n"), "\n")
	with := func(i int, line string) string {
		l := append([]string(nil), lines...)
		l[i] = line
		return strings.Join(l, "\n") + "\n"
	}
	replace := func(i int, old, new string) string { return with(i, strings.Replace(lines[i], old, new, 1)) }
	blank := good[3]
	blank.Info = "  "
	dupID := good[4]
	dupID.ID = good[1].ID
	for _, tc := range []struct {
		name, input, want string
	}{
		{"not JSON", with(2, `{"id":`), "line 3: "},
		{"an unknown field", replace(1, `"seq"`, `"extra":1,"seq"`), "line 2: "},
		{"a missing field", replace(0, `"source":"",`, ``), "line 1: missing source"},
		{"a blank info", with(3, string(blank.AppendJSON(nil))), "line 4: "},
		{"an id that is no UUID", replace(1, good[1].ID, "not-a-uuid"), "line 2: id"},
		{"a created_at without a zone", replace(2, "Z\"}", "\"}"), "line 3: created_at"},
		{"a seq that goes back", replace(3, `"seq":4`, `"seq":2`), "line 4: seq 2 does not follow seq 3"},
		{"an id twice", with(4, string(dupID.AppendJSON(nil))), "line 5: id " + good[1].ID},
		{"an empty line", with(2, ""), "line 3: "},
		{"a line over 1 MiB", with(2, strings.Repeat(" ", maxImportLine+1)), "line 3: longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "export.ndjson")
			if err := os.WriteFile(in, []byte(tc.input), 0o600); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(dir, "facts.db")
			code, _, errOut := runImport(t, "--store=bolt:"+db, in)
			if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "nothing was stored") {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errOut, tc.want)
			}
			// The file did not exist before: a refused import leaves none.
			if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused import left %s behind (stat: %v)", db, err)
			}
		})
	}
}

func TestImportRefusesAStoreThatHoldsFacts(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "facts.db")
	st, err := bolt.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	had := storetest.MustAppend(t, st, store.AppendRequest{Drafts: storetest.Drafts(1, "here")}).Facts
	st.Close()
	in := filepath.Join(dir, "export.ndjson")
	if err := os.WriteFile(in, []byte(exportOf(storetest.ExportedFacts(2))), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runImport(t, "--store", "bolt:"+db, in)
	if code != 1 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("exit %d, stderr %q; want 1 and a store that is not empty", code, errOut)
	}
	if got := boltFacts(t, db); !reflect.DeepEqual(got, had) {
		t.Fatalf("the file holds %v, want only %v", got, had)
	}
}

func TestImportRefusesAFileInUseAndTheMemoryStore(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "facts.db")
	st, err := bolt.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in := filepath.Join(dir, "export.ndjson")
	if err := os.WriteFile(in, []byte(exportOf(storetest.ExportedFacts(2))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ store, want string }{
		{"bolt:" + db, "locked by another process"},
		{"memory:", "memory: store keeps nothing"},
	} {
		code, _, errOut := runImport(t, "--store", tc.store, in)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("--store %s: exit %d, stderr %q; want 1 and %q", tc.store, code, errOut, tc.want)
		}
	}
	for _, args := range [][]string{{}, {"a", "b"}, {"--nope", in}} {
		if code, _, _ := runImport(t, args...); code != 2 {
			t.Errorf("import %q: exit %d, want 2", args, code)
		}
	}
}
