// Package builtins declares flowrun's built-in actions: text processing, chat models,
// HTTP, files, programs and flow control. Each action is one action.Spec holding its
// documentation, parameters, output and function; All returns them, and a registry
// built from them is passed to the loader and the runtime.
package builtins

import "github.com/flowrun/flowrun/action"

// All returns fresh declarations of every built-in action, in documentation order.
// Callers may modify what it returns without affecting later calls.
func All() []*action.Spec {
	return []*action.Spec{
		textSummarize(),
		textSplit(),
		textJoin(),
		textCount(),
		llmChat(),
		httpRequest(),
		fileRead(),
		fileWrite(),
		fileList(),
		execAction(),
		sleepAction(),
		failAction(),
		logAction(),
	}
}
