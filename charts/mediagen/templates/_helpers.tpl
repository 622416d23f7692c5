{{/* Names */}}
{{- define "mediagen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mediagen.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels: common ones, and the selector of one component ("operator", "gateway", "store"). */}}
{{- define "mediagen.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "mediagen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mediagen
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mediagen.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mediagen.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mediagen.componentLabels" -}}
{{ include "mediagen.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mediagen.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The demo store's image: demoStore.image, else the mediagen image's repository with "-demo" after the tag
(the Dockerfile's `demo` target: the product plus moto's S3 server). */}}
{{- define "mediagen.demoImage" -}}
{{- if .Values.demoStore.image.repository -}}
{{- printf "%s:%s" .Values.demoStore.image.repository (default .Chart.AppVersion .Values.demoStore.image.tag) -}}
{{- else -}}
{{- printf "%s:%s-demo" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "mediagen.operatorServiceAccount" -}}
{{- default (printf "%s-operator" (include "mediagen.fullname" .)) .Values.serviceAccount.operatorName -}}
{{- end -}}

{{- define "mediagen.gatewayServiceAccount" -}}
{{- default (printf "%s-gateway" (include "mediagen.fullname" .)) .Values.serviceAccount.gatewayName -}}
{{- end -}}

{{/* How the operator watches: "cluster" (all namespaces), "namespace" (exactly one) or "pattern" (a glob). */}}
{{- define "mediagen.watchMode" -}}
{{- $ns := .Values.operator.watchNamespace -}}
{{- if not $ns -}}cluster
{{- else if regexMatch "[][*?,!]" $ns -}}pattern
{{- else -}}namespace
{{- end -}}
{{- end -}}

{{/* "true" when the operators elect a leader on a Lease: asked for, or needed because several replicas run. */}}
{{- define "mediagen.leaderElection" -}}
{{- if or .Values.operator.leaderElection.enabled (gt (int .Values.operator.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{/* The Lease the replicas elect their leader on, in the release namespace. */}}
{{- define "mediagen.leaseName" -}}
{{- printf "%s-operator" (include "mediagen.fullname" .) -}}
{{- end -}}

{{/* The operator pods' affinity: operator.affinity as given, else (with more than one replica) the
     operator.podAntiAffinity preset, which spreads the replicas over nodes so a standby never shares the
     active replica's node. Empty when there is nothing to say. */}}
{{- define "mediagen.operatorAffinity" -}}
{{- $preset := .Values.operator.podAntiAffinity -}}
{{- if .Values.operator.affinity -}}
{{ toYaml .Values.operator.affinity }}
{{- else if and $preset (gt (int .Values.operator.replicas) 1) -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "mediagen.selectorLabels" (dict "root" . "component" "operator") | fromYaml)) -}}
podAntiAffinity:
{{- if eq $preset "required" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    {{- list $term | toYaml | nindent 4 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    {{- list (dict "weight" 100 "podAffinityTerm" $term) | toYaml | nindent 4 }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* "true" when the in-memory demo store replaces R2. */}}
{{- define "mediagen.demoStore" -}}
{{- if not .Values.r2.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "mediagen.demoStoreUrl" -}}
{{- /* A host name without dots: moto then reads buckets from the path, not from a subdomain. */ -}}
{{- printf "http://%s-store:%d" (include "mediagen.fullname" .) (int .Values.demoStore.port) -}}
{{- end -}}

{{/* Refuse combinations that cannot work, with a message that names the fix. */}}
{{- define "mediagen.validate" -}}
{{- if and .Values.r2.existingSecret (not (or .Values.r2.accountId .Values.r2.endpointUrl)) -}}
{{- fail "r2.existingSecret is set: also set r2.accountId (Cloudflare R2) or r2.endpointUrl (any S3-compatible store)" -}}
{{- end -}}
{{- with .Values.operator.leaderElection -}}
{{- if not (and (gt (float64 .leaseDurationSeconds) (float64 .renewDeadlineSeconds)) (gt (float64 .renewDeadlineSeconds) (float64 .retryPeriodSeconds))) -}}
{{- fail "operator.leaderElection needs leaseDurationSeconds > renewDeadlineSeconds > retryPeriodSeconds: the difference between the first two is the time a stopping leader's last requests have to land" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not (or .Values.operator.metrics.enabled .Values.gateway.enabled)) -}}
{{- fail "serviceMonitor.enabled has nothing to scrape: it needs operator.metrics.enabled (or gateway.enabled)" -}}
{{- end -}}
{{- if and .Values.prometheusRule.enabled (not .Values.operator.metrics.enabled) -}}
{{- fail "prometheusRule.enabled alerts on the operator's metrics: it needs operator.metrics.enabled" -}}
{{- end -}}
{{- if and .Values.operator.metrics.enabled (eq (int .Values.operator.metrics.port) (int .Values.operator.healthPort)) -}}
{{- fail "operator.metrics.port must differ from operator.healthPort" -}}
{{- end -}}
{{- if and .Values.operator.webhooks.enabled (not .Values.replicate.webhookUrl) -}}
{{- fail "operator.webhooks.enabled: set replicate.webhookUrl to the public HTTPS URL that reaches the operator-webhooks Service" -}}
{{- end -}}
{{- if and .Values.gateway.enabled .Values.gateway.tokenReview (not (include "mediagen.tokenReviewNamespaces" .)) -}}
{{- fail "gateway.tokenReview: set gateway.tokenReviewNamespaces (or gateway.namespaces) to the namespaces whose ServiceAccounts may be tenants, or [\"*\"]" -}}
{{- end -}}
{{- if and .Values.apiService.enabled (not .Values.gateway.enabled) -}}
{{- fail "apiService.enabled: the aggregated API is served by the gateway; also set gateway.enabled" -}}
{{- end -}}
{{- if and .Values.apiService.enabled .Values.apiService.certManager.enabled (not .Values.apiService.certManager.issuerRef.name) -}}
{{- fail "apiService.certManager.enabled: set apiService.certManager.issuerRef.name (the cert-manager Issuer)" -}}
{{- end -}}
{{- if and .Values.apiService.enabled (eq (int .Values.apiService.port) (int .Values.gateway.port)) -}}
{{- fail "apiService.port must differ from gateway.port" -}}
{{- end -}}
{{- if and .Values.resourceQuota.enabled (not (include "mediagen.quotaNamespaces" .)) -}}
{{- fail "resourceQuota.enabled: set resourceQuota.namespaces (or gateway.namespaces)" -}}
{{- end -}}
{{- if and .Values.operator.webhooks.enabled (has (int .Values.operator.webhooks.port) (list (int .Values.operator.healthPort) (int .Values.operator.metrics.port))) -}}
{{- fail "operator.webhooks.port must differ from operator.healthPort and operator.metrics.port" -}}
{{- end -}}
{{- end -}}

{{/* JSON list of the namespaces whose ServiceAccounts may be gateway tenants ("" when none). */}}
{{- define "mediagen.tokenReviewNamespaces" -}}
{{- $ns := .Values.gateway.tokenReviewNamespaces | default .Values.gateway.namespaces -}}
{{- if $ns -}}{{ toJson $ns }}{{- end -}}
{{- end -}}

{{/* JSON list of the namespaces that get the MediaGeneration ResourceQuota ("" when none). */}}
{{- define "mediagen.quotaNamespaces" -}}
{{- $ns := .Values.resourceQuota.namespaces | default .Values.gateway.namespaces -}}
{{- if $ns -}}{{ toJson $ns }}{{- end -}}
{{- end -}}

{{/* The aggregated API's Service, and the Secret with its serving certificate. */}}
{{- define "mediagen.apiServiceName" -}}
{{- printf "%s-gateway-api" (include "mediagen.fullname" .) -}}
{{- end -}}

{{- define "mediagen.apiServiceTLSSecret" -}}
{{- printf "%s-gateway-api-tls" (include "mediagen.fullname" .) -}}
{{- end -}}

{{- define "mediagen.sessionSecret" -}}
{{- default (printf "%s-gateway-session" (include "mediagen.fullname" .)) .Values.gateway.sessionSecret -}}
{{- end -}}

{{/* PromQL label matchers that pick this installation's series (prometheusRule.selector, or its namespace). */}}
{{- define "mediagen.alertSelector" -}}
{{- default (printf "namespace=%q" .Release.Namespace) .Values.prometheusRule.selector -}}
{{- end -}}

{{/* The restricted pod and container security contexts. */}}
{{- define "mediagen.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "mediagen.securityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end -}}
