// The 2023 Ginkgo form of the OCI distribution-spec conformance suite (the v1.1-era suite with
// its four workflows: pull, push, content discovery with referrers, content management). It is a
// test package of the module github.com/opencontainers/distribution-spec/conformance, the same
// module path as the current suite, which the root go.mod pins as a tool at a 2025 version. One
// go.mod cannot hold two versions of one module, so this one pins the 2023 version on its own;
// scripts/conformance/distribution-spec.sh builds it with `go test -c` from here. Nothing in the
// project imports it.
module github.com/berth-dev/berth/tools/conformance-legacy

go 1.26.0

require github.com/opencontainers/distribution-spec/conformance v0.0.0-20231101194043-f2182352d4cc

require (
	github.com/asaskevich/govalidator v0.0.0-20230301143203-a9d515a09cc2 // indirect
	github.com/bloodorangeio/reggie v0.6.1 // indirect
	github.com/go-logr/logr v1.2.4 // indirect
	github.com/go-resty/resty/v2 v2.7.0 // indirect
	github.com/go-task/slim-sprig v0.0.0-20230315185526-52ccab3ef572 // indirect
	github.com/google/pprof v0.0.0-20230602150820-91b7bce49751 // indirect
	github.com/google/uuid v1.3.0 // indirect
	github.com/mitchellh/mapstructure v1.5.0 // indirect
	github.com/onsi/ginkgo/v2 v2.11.0 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	golang.org/x/net v0.11.0 // indirect
	golang.org/x/sys v0.9.0 // indirect
	golang.org/x/tools v0.10.0 // indirect
)
