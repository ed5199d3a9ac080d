module promsnap.local/tools/kube-state-metrics

go 1.26

// go install cannot fetch it (the module proxy refuses to list k8s.io/kube-state-metrics/v2), but it
// serves this exact version, which builds from a wrapper module without replace directives.
require k8s.io/kube-state-metrics/v2 v2.20.0
