// Command kstatus prints, for each Kubernetes object on stdin, the status kstatus computes: the library
// (sigs.k8s.io/cli-utils/pkg/kstatus/status) behind Flux's health checks (`wait: true`, `healthChecks`), kpt and
// cli-utils. Input: JSON or YAML, one or more documents, Lists flattened (`kubectl get -o json` output).
// Output: a JSON array of {apiVersion, kind, namespace, name, status, message[, error]} in input order, where
// status is InProgress, Current, Failed, Terminating, NotFound or Unknown. Exit 2 on bad input, 1 when kstatus
// returned an error for an object.
package main

import (
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"example.invalid/hack/tools/checks/internal/objects"
)

func main() {
	if len(os.Args) > 1 {
		objects.Fail("kstatus takes no arguments: it reads objects on stdin")
	}
	objects.JudgeStdin(func(obj *unstructured.Unstructured, result *objects.Result) {
		computed, err := status.Compute(obj)
		if err != nil {
			result.Status, result.Error = string(status.UnknownStatus), err.Error()
			return
		}
		result.Status, result.Message = string(computed.Status), computed.Message
	})
}
