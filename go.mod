module github.com/flowrun/flowrun

go 1.25

require (
	github.com/expr-lang/expr v1.17.8
	github.com/google/go-cmp v0.7.0
	gopkg.in/yaml.v3 v3.0.1
)
