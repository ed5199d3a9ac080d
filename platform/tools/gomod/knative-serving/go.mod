module promsnap.local/tools/knative-serving

go 1.26

require knative.dev/serving v0.50.0
