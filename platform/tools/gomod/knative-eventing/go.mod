module promsnap.local/tools/knative-eventing

go 1.26

require knative.dev/eventing v0.50.0
