{{/* The chart name, truncated to the 63 characters a label value allows. */}}
{{- define "mltrl-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name. */}}
{{- define "mltrl-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mltrl-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "mltrl-operator.labels" -}}
helm.sh/chart: {{ include "mltrl-operator.chart" . }}
{{ include "mltrl-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mltrl-operator
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "mltrl-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mltrl-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mltrl-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mltrl-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mltrl-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "mltrl-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "mltrl-operator.fullname" .) }}
{{- end }}

{{- define "mltrl-operator.webhookCertificateName" -}}
{{- printf "%s-webhook" (include "mltrl-operator.fullname" .) }}
{{- end }}

{{/* The Secret with the webhook's serving certificate. */}}
{{- define "mltrl-operator.webhookTLSSecret" -}}
{{- if .Values.certManager.enabled }}
{{- printf "%s-webhook-tls" (include "mltrl-operator.fullname" .) }}
{{- else }}
{{- required "webhook.tlsSecretName is required when certManager.enabled is false" .Values.webhook.tlsSecretName }}
{{- end }}
{{- end }}

{{/* The Secret with the Alertmanager bearer token, and its key. */}}
{{- define "mltrl-operator.alertsSecret" -}}
{{- default (printf "%s-alerts-token" (include "mltrl-operator.fullname" .)) .Values.alerts.token.existingSecret }}
{{- end }}

{{- define "mltrl-operator.alertsSecretKey" -}}
{{- if .Values.alerts.token.existingSecret }}
{{- .Values.alerts.token.existingSecretKey }}
{{- else -}}
token
{{- end }}
{{- end }}

{{/*
What the webhook configurations share: where the API server calls, how long it waits,
and which requests never reach the operator. The operator's own writes are let through
(it patches InferenceServices it stops and would otherwise ask itself), and so are
writes to objects already being deleted (so that finalizers can always be removed).
*/}}
{{- define "mltrl-operator.webhookCommon" -}}
sideEffects: None
admissionReviewVersions: ["v1"]
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
matchPolicy: Equivalent
matchConditions:
  - name: not-the-operator
    expression: 'request.userInfo.username != "system:serviceaccount:{{ .Release.Namespace }}:{{ include "mltrl-operator.serviceAccountName" . }}"'
  - name: not-being-deleted
    expression: '!has(object.metadata.deletionTimestamp)'
{{- end }}

{{/* Namespaced objects in the release namespace, kube-system and the listed ones are skipped. */}}
{{- define "mltrl-operator.webhookNamespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range (concat (list .Release.Namespace "kube-system") .Values.webhook.excludeNamespaces | uniq) }}
        - {{ . | quote }}
        {{- end }}
{{- end }}

{{- define "mltrl-operator.webhookClientConfig" -}}
{{- $root := index . 0 }}
{{- $path := index . 1 }}
clientConfig:
  service:
    name: {{ include "mltrl-operator.webhookServiceName" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ $path }}
    port: 443
  {{- if not $root.Values.certManager.enabled }}
  caBundle: {{ required "webhook.caBundle is required when certManager.enabled is false" $root.Values.webhook.caBundle }}
  {{- end }}
{{- end }}
