package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/flowrun/flowrun/spec"
)

func (e *env) validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check workflow files and report every problem at file:line:col",
		ArgsUsage: "FILE...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "text, or json for tools"},
			allowPathFlag,
		},
		Action: func(c *cli.Context) error {
			format := c.String("format")
			if format != "text" && format != "json" {
				return usageError("--format %q: expected text or json", format)
			}
			if c.Args().Len() == 0 {
				return usageError("validate: name at least one workflow file")
			}
			paths, err := allowedPaths(c)
			if err != nil {
				return err
			}
			return e.validate(&spec.Loader{Registry: e.reg, AllowPaths: paths}, c.Args().Slice(), format)
		},
	}
}

// diagnostic is one problem in --format json.
type diagnostic struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

type fileReport struct {
	File        string       `json:"file"`
	Valid       bool         `json:"valid"`
	Diagnostics []diagnostic `json:"diagnostics"`
}

func (e *env) validate(ld *spec.Loader, files []string, format string) error {
	report := struct {
		Valid bool         `json:"valid"`
		Files []fileReport `json:"files"`
	}{Valid: true}
	for _, file := range files {
		wf, err := ld.Load(file)
		var diags spec.Errors
		switch {
		case err == nil:
			diags = wf.Warnings
		case errors.As(err, &diags):
		default:
			diags = spec.Errors{{Pos: spec.Pos{File: file}, Msg: err.Error()}}
		}
		fr := fileReport{File: file, Valid: err == nil, Diagnostics: []diagnostic{}}
		for _, d := range diags {
			fr.Diagnostics = append(fr.Diagnostics, diagnostic{File: d.Pos.File, Line: d.Pos.Line, Column: d.Pos.Col,
				Severity: d.Severity.String(), Message: d.Msg})
		}
		report.Valid = report.Valid && fr.Valid
		report.Files = append(report.Files, fr)
		if format == "text" {
			for _, d := range diags {
				fmt.Fprintln(e.stderr, d.Error())
			}
			if err == nil {
				fmt.Fprintf(e.stdout, "%s: ok (%d nodes, %d state fields)\n", file, len(wf.Nodes), len(wf.State))
			}
		}
	}
	if format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return exitWith(exitFailed, err)
		}
	}
	if !report.Valid {
		return exitWith(exitInvalid, nil)
	}
	return nil
}
