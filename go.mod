module github.com/cnilab/cnilab

go 1.26.8

require github.com/vishvananda/netns v0.0.5

require (
	golang.org/x/sys v0.50.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
