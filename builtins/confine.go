package builtins

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/flowrun/flowrun/action"
)

// place is a path that lies inside a directory the run allows: root is that
// directory with symbolic links resolved, rel the path inside it (no "..", no links
// in its existing part). File actions open root with os.OpenRoot and use rel, so a
// link created after the check cannot lead outside either.
type place struct {
	root string
	rel  string
}

// confine resolves name against Env.Dir and checks that it stays inside Env.Dir or
// one of Env.AllowPaths, after resolving the symbolic links of its existing part.
func confine(e *action.Env, name string) (place, error) {
	if name == "" {
		return place{}, action.Permanentf("empty path")
	}
	dirs, shown := allowedDirs(e)
	abs := filepath.Clean(name)
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(baseDir(e), abs)
	}
	real, err := realPath(abs)
	if err != nil {
		return place{}, action.Permanentf("path %q: %v", name, err)
	}
	for _, p := range e.Private {
		if rp, err := realPath(absolute(e, p)); err == nil {
			if _, in := inside(rp, real); in {
				return place{}, action.Permanentf("path %q lies in flowrun's run store (%s), which actions may not use", name, p)
			}
		}
	}
	for _, d := range dirs {
		if rel, ok := inside(d, real); ok {
			return place{root: d, rel: rel}, nil
		}
	}
	return place{}, outside(name, shown)
}

// absolute resolves p against the base directory when it is relative.
func absolute(e *action.Env, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(baseDir(e), p)
}

// private reports whether the directory abs (links resolved) is, or lies in, a
// private directory: file.list does not look inside.
func private(e *action.Env, abs string) bool {
	for _, p := range e.Private {
		if rp, err := realPath(absolute(e, p)); err == nil {
			if _, in := inside(rp, abs); in {
				return true
			}
		}
	}
	return false
}

// baseDir is the directory relative paths resolve against.
func baseDir(e *action.Env) string {
	if e.Dir != "" {
		if abs, err := filepath.Abs(e.Dir); err == nil {
			return abs
		}
		return e.Dir
	}
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}

// allowedDirs returns the allowed directories with links resolved, and as they are
// shown in messages. Relative AllowPaths resolve against Env.Dir.
func allowedDirs(e *action.Env) (real, shown []string) {
	base := baseDir(e)
	for i, d := range append([]string{base}, e.AllowPaths...) {
		if i > 0 && !filepath.IsAbs(d) {
			d = filepath.Join(base, d)
		}
		d = filepath.Clean(d)
		shown = append(shown, d)
		if r, err := filepath.EvalSymlinks(d); err == nil {
			real = append(real, r)
		}
	}
	return real, shown
}

// realPath resolves the symbolic links of the longest existing prefix of abs and
// appends the rest unchanged. A dangling link is followed to where it points, so
// that writing through it is checked against its target.
func realPath(abs string) (string, error) {
	for hops := 0; hops < 40; hops++ {
		cur, rest, next := abs, "", ""
		for next == "" {
			r, err := filepath.EvalSymlinks(cur)
			if err == nil {
				return filepath.Join(r, rest), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
			if fi, err := os.Lstat(cur); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				target, err := os.Readlink(cur)
				if err != nil {
					return "", err
				}
				if !filepath.IsAbs(target) {
					target = filepath.Join(filepath.Dir(cur), target)
				}
				next = filepath.Join(target, rest)
				break
			}
			parent := filepath.Dir(cur)
			if parent == cur {
				return abs, nil
			}
			rest = filepath.Join(filepath.Base(cur), rest)
			cur = parent
		}
		abs = next
	}
	return "", errors.New("too many levels of symbolic links")
}

// inside reports whether p lies in dir, and p's path relative to dir.
func inside(dir, p string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

func outside(name string, shown []string) error {
	return action.Permanentf("path %q is outside the directories file actions may use (%s); pass --allow-path DIR to allow another directory",
		name, strings.Join(shown, ", "))
}

// fileError describes a failed file operation. Missing files, permissions and
// escapes through symbolic links are permanent; other I/O errors are retryable.
func fileError(op, name string, err error, pl place) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // its path is the internal one; the message names the user's
	}
	msg := fmt.Sprintf("%s %q: %v", op, name, err)
	switch {
	case strings.Contains(err.Error(), "escapes from parent"):
		return action.Permanentf("path %q leads outside %s through a symbolic link; pass --allow-path DIR to allow another directory", name, pl.root)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrExist):
		return &action.Error{Msg: msg, Permanent: true, Err: err}
	}
	return &action.Error{Msg: msg, Err: err}
}
