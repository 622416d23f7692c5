// Package objects reads Kubernetes objects the way kubectl prints them and writes the checks' answers.
package objects

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Read decodes every object in r: JSON or YAML, one or several documents, and the items of any List (what
// `kubectl get -o json` prints for more than one object). Every object needs apiVersion and kind. Whole numbers
// become int64, as in every Kubernetes client (kstatus reads metadata.generation as one).
func Read(r io.Reader) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []*unstructured.Unstructured
	for document := 1; ; document++ {
		var text json.RawMessage
		err := decoder.Decode(&text)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", document, err)
		}
		var raw any
		if len(text) > 0 {
			if err := utiljson.Unmarshal(text, &raw); err != nil {
				return nil, fmt.Errorf("document %d: %w", document, err)
			}
		}
		if raw == nil {
			continue // an empty YAML document ("---" twice)
		}
		fields, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document %d is a %T, not an object", document, raw)
		}
		found, err := flatten(fields)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", document, err)
		}
		out = append(out, found...)
	}
	if len(out) == 0 {
		return nil, errors.New("no objects in the input")
	}
	return out, nil
}

func flatten(fields map[string]any) ([]*unstructured.Unstructured, error) {
	kind, _ := fields["kind"].(string)
	if items, isList := fields["items"]; isList && strings.HasSuffix(kind, "List") {
		list, ok := items.([]any)
		if !ok && items != nil {
			return nil, fmt.Errorf("%s.items is a %T, not a list", kind, items)
		}
		var out []*unstructured.Unstructured
		for i, item := range list {
			object, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s.items[%d] is a %T, not an object", kind, i, item)
			}
			found, err := flatten(object)
			if err != nil {
				return nil, fmt.Errorf("%s.items[%d]: %w", kind, i, err)
			}
			out = append(out, found...)
		}
		return out, nil
	}
	object := &unstructured.Unstructured{Object: fields}
	if object.GetAPIVersion() == "" || object.GetKind() == "" {
		return nil, errors.New("an object without apiVersion or kind")
	}
	return []*unstructured.Unstructured{object}, nil
}

// Result is one object's answer: which object, the status and message the tool computed, and the tool's error
// (if it returned one) verbatim.
type Result struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	Error      string `json:"error,omitempty"`
}

// JudgeStdin reads the objects on stdin, has judge fill in each one's status, message and error, prints the results
// as one JSON array in input order and exits: 2 on bad input, 1 when the tool returned an error for any object.
func JudgeStdin(judge func(obj *unstructured.Unstructured, result *Result)) {
	input, err := Read(os.Stdin)
	if err != nil {
		Fail("reading objects from stdin: %v", err)
	}
	results := make([]Result, 0, len(input))
	failed := false
	for _, obj := range input {
		result := Result{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
		judge(obj, &result)
		failed = failed || result.Error != ""
		results = append(results, result)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(results); err != nil {
		Fail("writing the results: %v", err)
	}
	if failed {
		os.Exit(1)
	}
	os.Exit(0)
}

// Fail reports bad input or usage on stderr and exits 2.
func Fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(2)
}
