// Command argocd-health prints, for each Kubernetes object on stdin, the health Argo CD v3 assigns it, computed
// by Argo CD's own code: gitops-engine's health.GetResourceHealth with the Lua health scripts run by Argo CD's
// util/lua, in one of the two ways Argo CD finds a script:
//
//	argocd-health --resource-customizations DIR   # bundled: DIR/<group>/<Kind>/health.lua, as in Argo CD's
//	                                               # resource_customizations folder (built into Argo CD)
//	argocd-health --argocd-cm FILE                 # the live argocd-cm ConfigMap (`kubectl get cm argocd-cm -o
//	                                               # yaml`): resource.customizations.* keys, read by Argo CD's
//	                                               # settings manager
//
// The two differ in which Lua libraries the script gets: Argo CD opens the standard libraries (string, math, ...)
// for every bundled script, but for a ConfigMap customization only when
// resource.customizations.useOpenLibs.<group_kind> is true (util/lua.VM.GetHealthScript).
//
// Input: JSON or YAML, one or more documents, Lists flattened. Output: a JSON array of {apiVersion, kind,
// namespace, name, status, message[, error]} in input order; status is what Argo CD shows (Healthy, Progressing,
// Degraded, Suspended, Missing, Unknown; "" when no health check applies), and a script error is reported as
// Argo CD reports it (Unknown, the error as the message) with the error in "error". Exit 2 on bad input or usage,
// 1 when Argo CD returned an error for an object.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/argoproj/argo-cd/gitops-engine/pkg/health"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"example.invalid/hack/tools/checks/internal/objects"
)

func main() {
	bundledDir := flag.String("resource-customizations", "", "a resource_customizations folder: <group>/<Kind>/health.lua")
	configMapFile := flag.String("argocd-cm", "", "the live argocd-cm ConfigMap (YAML or JSON)")
	flag.Parse()
	log.SetLevel(log.WarnLevel) // the settings manager's informer chatter is no answer
	if flag.NArg() != 0 || (*bundledDir == "") == (*configMapFile == "") {
		objects.Fail("usage: argocd-health (--resource-customizations DIR | --argocd-cm FILE) < objects")
	}

	var override health.HealthOverride
	if *bundledDir != "" {
		info, err := os.Stat(*bundledDir)
		if err != nil || !info.IsDir() {
			objects.Fail("--resource-customizations %s is not a folder", *bundledDir)
		}
		override = bundled{dir: *bundledDir}
	} else {
		overrides, err := configMapOverrides(*configMapFile)
		if err != nil {
			objects.Fail("--argocd-cm %s: %v", *configMapFile, err)
		}
		override = lua.ResourceHealthOverrides(overrides)
	}

	objects.JudgeStdin(func(obj *unstructured.Unstructured, result *objects.Result) {
		status, err := health.GetResourceHealth(obj, override)
		if status != nil {
			result.Status, result.Message = string(status.Status), status.Message
		}
		if err != nil {
			result.Error = err.Error()
		}
	})
}

// bundled finds scripts the way Argo CD finds its built-in ones (<group>/<Kind>/health.lua, keyed by
// lua.GetConfigMapKey) and runs them as Argo CD runs those: with the standard libraries open.
type bundled struct{ dir string }

func (b bundled) GetResourceHealth(obj *unstructured.Unstructured) (*health.HealthStatus, error) {
	script, err := os.ReadFile(filepath.Join(b.dir, lua.GetConfigMapKey(obj.GroupVersionKind()), "health.lua"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no script for this kind: Argo CD falls back to its built-in Go checks
	}
	if err != nil {
		return nil, err
	}
	vm := lua.VM{UseOpenLibs: true}
	return vm.ExecuteHealthLua(obj, string(script))
}

// configMapOverrides reads the resource customizations of an argocd-cm ConfigMap through Argo CD's settings
// manager, the code the application controller uses, over a fake clientset holding that ConfigMap.
func configMapOverrides(path string) (map[string]v1alpha1.ResourceOverride, error) {
	data, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer data.Close()
	found, err := objects.Read(data)
	if err != nil {
		return nil, err
	}
	if len(found) != 1 || found[0].GetKind() != "ConfigMap" || found[0].GetName() != "argocd-cm" {
		return nil, errors.New("expected exactly one ConfigMap named argocd-cm")
	}
	configMap := &corev1.ConfigMap{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(found[0].Object, configMap); err != nil {
		return nil, err
	}
	if configMap.Labels["app.kubernetes.io/part-of"] != "argocd" {
		// Argo CD's settings manager lists ConfigMaps by this label: without it, Argo CD sees no argocd-cm.
		return nil, errors.New("the ConfigMap lacks the label app.kubernetes.io/part-of=argocd that Argo CD selects it by")
	}
	if configMap.Namespace == "" {
		configMap.Namespace = "argocd"
	}
	manager := settings.NewSettingsManager(context.Background(), fake.NewClientset(configMap), configMap.Namespace)
	overrides, err := manager.GetResourceOverrides()
	if err != nil {
		return nil, fmt.Errorf("Argo CD's settings manager: %w", err)
	}
	return overrides, nil
}
