package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/flowrun/flowrun/action"
	"github.com/flowrun/flowrun/builtins"
	"github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/spec"
	"github.com/flowrun/flowrun/store"
)

// A run that fails is kept in the store; once its cause is fixed, one call resumes
// it, and the items that finished before are not run again.
func ExampleStore_Resume() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "words.yaml")
	os.WriteFile(file, []byte(`version: 1
state:
  words: {type: integer, reducer: sum}
nodes:
  fan:
    map: {over: "['a.txt', 'b.txt']", as: path, to: read}
  read:
    action: file.read
    with: {path: "${{ input.path }}"}
    set: {text: "${{ output.text }}"}
    next: count
  count:
    action: text.count
    with: {text: "${{ input.text }}"}
    update: {words: "${{ output.words }}"}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("one two"), 0o644)
	reg, _ := action.NewRegistry(builtins.All()...)
	wf, err := spec.Load(file, reg)
	if err != nil {
		panic(err)
	}
	st := &store.Store{Dir: filepath.Join(dir, ".flowrun")}

	ss, _ := st.Create(wf, nil, store.Meta{ID: "demo"})
	_, err = ss.Run(context.Background(), runtime.Options{})
	var re *runtime.RunError
	fmt.Println("first attempt failed:", errors.As(err, &re))

	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("three"), 0o644) // the fix
	res, err := st.Resume(context.Background(), "demo", reg, runtime.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Output["words"], res.Status)
	// Output:
	// first attempt failed: true
	// 3 succeeded
}
