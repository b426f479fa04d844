package app

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"

	"factstream/store"
)

// maxImportLine bounds one line of an import: a fact of maximum size,
// escaped, is well under it.
const maxImportLine = 1 << 20

// importUsage is the import command's synopsis.
const importUsage = "factstream import [--store S] FILE   load an export (NDJSON, - for standard input) into an empty store"

// importer is a store that loads exported facts.
type importer interface {
	Import(ctx context.Context, facts iter.Seq2[store.Fact, error]) error
}

// Import is the "import" command: it loads the facts of an export
// (GET /admin/export, one JSON fact per line) into an empty store, keeping
// their ids, seqs, texts and times, with no server running on that store.
// A bad line, seqs that do not strictly increase, an id seen twice or a
// store that holds facts stop it with a line naming the cause, and then
// nothing is stored. It returns the exit code.
func Import(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "factstream import: "+format+"\n", a...)
		return 1
	}
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	spec := getenv("FACTSTREAM_STORE")
	if spec == "" {
		spec = DefaultConfig().Store
	}
	fs.StringVar(&spec, "store", spec, "the store to load: bolt:<path> or redis://host:port/db (FACTSTREAM_STORE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: %s\n\n  --store (FACTSTREAM_STORE, default %q)\n      %s\n", importUsage, spec,
				"the store to load: bolt:<path> or redis://host:port/db; it must hold no fact, and no server may run on it")
			return 0
		}
		fmt.Fprintf(stderr, "factstream import: %v\nUsage: %s\n", err, importUsage)
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "factstream import: name one file (- for standard input)\nUsage: %s\n", importUsage)
		return 2
	}
	kind, err := store.Kind(spec)
	if err != nil {
		return fail("%v", err)
	}
	if kind == "memory" {
		return fail("the memory: store keeps nothing once the command ends: import into bolt:<path> or redis://")
	}

	name := fs.Arg(0)
	path, cleanup, err := importFile(name, stdin)
	if err != nil {
		return fail("%v", err)
	}
	defer cleanup()
	in, err := os.Open(path)
	if err != nil {
		return fail("%v", err)
	}
	defer in.Close()

	// A bolt file the import creates goes again if nothing is stored in
	// it, so a refused import leaves the disk as it found it.
	removeNew := func() {}
	if kind == "bolt" {
		file := strings.TrimPrefix(spec, "bolt:")
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			removeNew = func() { os.Remove(file) }
		}
	}
	st, err := openStore(spec, store.Options{})
	if err != nil {
		removeNew()
		return fail("%v; nothing was stored", err)
	}
	im, ok := st.(importer)
	if !ok { // every backend but memory has it
		st.Close()
		return fail("the %s store cannot import", kind)
	}
	var n int
	var first, last uint64
	err = im.Import(ctx, exportFacts(in, func(f store.Fact) {
		if n == 0 {
			first = f.Seq
		}
		n, last = n+1, f.Seq
	}))
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		removeNew()
	}
	var dup *store.DuplicateIDError
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotEmpty):
		return fail("%s: %v: import only into a new store; nothing was stored", redactedStore(spec), err)
	case errors.As(err, &dup):
		line := lineOfSeq(path, dup.Seq)
		return fail("%s: line %d: id %s is already the id of an earlier line; nothing was stored", name, line, dup.ID)
	default:
		return fail("%s: %v; nothing was stored", name, err)
	}
	if n == 0 {
		fmt.Fprintf(stdout, "imported no fact: %s holds none\n", name)
		return 0
	}
	fmt.Fprintf(stdout, "imported %d facts, seqs %d to %d, into %s\n", n, first, last, redactedStore(spec))
	return 0
}

// importFile returns the path of the file to import: name itself, or, for
// "-", a temporary copy of stdin (read once, so that a refusal can be
// traced back to its line).
func importFile(name string, stdin io.Reader) (path string, cleanup func(), err error) {
	if name != "-" {
		return name, func() {}, nil
	}
	tmp, err := os.CreateTemp("", "factstream-import-*.ndjson")
	if err != nil {
		return "", nil, fmt.Errorf("keep standard input: %w", err)
	}
	cleanup = func() { os.Remove(tmp.Name()) }
	_, err = io.Copy(tmp, stdin)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("keep standard input: %w", err)
	}
	return tmp.Name(), cleanup, nil
}

// lineError names the input line a fact came from.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// exportFacts yields the facts of an export, one a line, checked as a
// store would have made them and in strictly increasing seqs; it stops at
// the first bad line with a *lineError. seen is told of every fact
// yielded.
func exportFacts(r io.Reader, seen func(store.Fact)) iter.Seq2[store.Fact, error] {
	return func(yield func(store.Fact, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
		var prev store.Fact
		line := 0
		for sc.Scan() {
			line++
			f, err := store.ParseFactLine(sc.Bytes())
			if err == nil {
				err = store.ImportOrder(prev, f)
			}
			if err != nil {
				yield(store.Fact{}, &lineError{line: line, err: err})
				return
			}
			prev = f
			seen(f)
			if !yield(f, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("longer than %d bytes", maxImportLine)
			}
			yield(store.Fact{}, &lineError{line: line + 1, err: err})
		}
	}
}

// lineOfSeq finds the line of path that holds the fact with seq; 0 when
// none does.
func lineOfSeq(path string, seq uint64) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	line := 0
	for fact, err := range exportFacts(f, func(store.Fact) {}) {
		if err != nil {
			return 0
		}
		line++
		if fact.Seq == seq {
			return line
		}
	}
	return 0
}

// redactedStore is a store specification without the password a Redis
// URL may hold.
func redactedStore(spec string) string {
	if i := strings.Index(spec, "@"); i >= 0 && strings.HasPrefix(spec, "redis") {
		if j := strings.Index(spec, "://"); j >= 0 && j < i {
			return spec[:j+3] + "…" + spec[i:]
		}
	}
	return spec
}
