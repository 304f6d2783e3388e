{{/* Names and labels. */}}
{{- define "monitorme.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "monitorme.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "monitorme.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "monitorme.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: monitorme
{{- end -}}

{{/* selectorLabels: pass (list $ "role"). */}}
{{- define "monitorme.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "monitorme.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "monitorme.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The Kafka flags of a role: pass (list $ "user-key"). */}}
{{- define "monitorme.kafkaArgs" -}}
{{- $ := index . 0 -}}
{{- $user := index $.Values.kafka.sasl.users (index . 1) -}}
{{- $k := $.Values.kafka -}}
- --brokers={{ join "," $k.brokers }}
- --client-id={{ $k.clientId }}
- --partitions={{ $k.partitions }}
- --replication-factor={{ $k.replicationFactor }}
- --topic-vitals={{ $k.topics.vitals }}
- --topic-alerts={{ $k.topics.alerts }}
- --topic-state={{ $k.topics.state }}
- --topic-acks={{ $k.topics.acks }}
- --topic-vitals-dlq={{ $k.topics.vitalsDlq }}
- --topic-alerts-dlq={{ $k.topics.alertsDlq }}
- --topic-acks-dlq={{ $k.topics.acksDlq }}
- --topic-placements={{ $k.topics.placements }}
{{- if $k.tls.enabled }}
- --tls-enabled
{{- if $k.tls.caSecret }}
- --tls-truststore=/etc/monitorme/kafka-ca/{{ $k.tls.caKey }}
{{- end }}
{{- if $k.tls.clientCertSecret }}
- --tls-cert=/etc/monitorme/kafka-client/tls.crt
- --tls-key=/etc/monitorme/kafka-client/tls.key
{{- end }}
{{- if $k.tls.serverName }}
- --tls-server-name={{ $k.tls.serverName }}
{{- end }}
{{- end }}
{{- if $k.sasl.mechanism }}
- --sasl-mechanism={{ $k.sasl.mechanism }}
- --user={{ $user.username }}
{{- end }}
- --log-level={{ $.Values.logLevel }}
- --log-format={{ $.Values.logFormat }}
{{- end -}}

{{/* The Kafka password of a role, from its Secret: pass (list $ "user-key"). */}}
{{- define "monitorme.kafkaEnv" -}}
{{- $ := index . 0 -}}
{{- $user := index $.Values.kafka.sasl.users (index . 1) -}}
{{- if $.Values.kafka.sasl.mechanism }}
- name: MONITORME_KAFKA_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "kafka.sasl.users.%s.existingSecret: a Secret with the Kafka password of %s is required with kafka.sasl.mechanism" (index . 1) $user.username) $user.existingSecret }}
      key: {{ $user.passwordKey }}
{{- end }}
{{- end -}}

{{- define "monitorme.kafkaVolumeMounts" -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/monitorme/kafka-ca
  readOnly: true
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  mountPath: /etc/monitorme/kafka-client
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "monitorme.kafkaVolumes" -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  secret:
    secretName: {{ .Values.kafka.tls.clientCertSecret }}
{{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* ClickHouse flags, env, mounts. */}}
{{- define "monitorme.clickhouseArgs" -}}
{{- $c := .Values.clickhouse -}}
- --clickhouse-addr={{ join "," $c.addr }}
- --clickhouse-protocol={{ $c.protocol }}
- --clickhouse-database={{ $c.database }}
- --clickhouse-user={{ $c.user }}
{{- if $c.tls.enabled }}
- --clickhouse-tls
{{- if $c.tls.caSecret }}
- --clickhouse-ca-file=/etc/monitorme/clickhouse-ca/{{ $c.tls.caKey }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "monitorme.clickhouseEnv" -}}
{{- if .Values.clickhouse.existingSecret }}
- name: MONITORME_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.clickhouse.existingSecret }}
      key: {{ .Values.clickhouse.passwordKey }}
{{- end }}
{{- end -}}

{{- define "monitorme.clickhouseVolumeMounts" -}}
{{- if and .Values.clickhouse.tls.enabled .Values.clickhouse.tls.caSecret }}
- name: clickhouse-ca
  mountPath: /etc/monitorme/clickhouse-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "monitorme.clickhouseVolumes" -}}
{{- if and .Values.clickhouse.tls.enabled .Values.clickhouse.tls.caSecret }}
- name: clickhouse-ca
  secret:
    secretName: {{ .Values.clickhouse.tls.caSecret }}
{{- end }}
{{- end -}}

{{/* The API's authentication, HTTPS and CORS flags (ingest and api). */}}
{{- define "monitorme.apiArgs" -}}
{{- $a := .Values.auth -}}
{{- if eq $a.mode "insecure" }}
- --insecure
{{- else if eq $a.mode "tokens" }}
- --auth-token-file=/etc/monitorme/tokens/{{ $a.tokens.key }}
{{- else }}
- --auth-issuer={{ required "auth.oidc.issuer is required with auth.mode oidc" $a.oidc.issuer }}
- --auth-audience={{ required "auth.oidc.audience is required with auth.mode oidc" $a.oidc.audience }}
{{- if $a.oidc.jwksUrl }}
- --auth-jwks-url={{ $a.oidc.jwksUrl }}
{{- end }}
- --auth-roles-claim={{ $a.oidc.rolesClaim }}
- --auth-subject-claim={{ $a.oidc.subjectClaim }}
- --auth-devices-claim={{ $a.oidc.devicesClaim }}
- --auth-algorithms={{ join "," $a.oidc.algorithms }}
{{- end }}
{{- with $a.corsOrigins }}
- --cors-origins={{ join "," . }}
{{- end }}
- --metrics-access={{ $a.metricsAccess }}
{{- if .Values.apiTLS.enabled }}
- --http-tls-cert=/etc/monitorme/http-tls/tls.crt
- --http-tls-key=/etc/monitorme/http-tls/tls.key
{{- end }}
{{- end -}}

{{- define "monitorme.apiVolumeMounts" -}}
{{- if eq .Values.auth.mode "tokens" }}
- name: tokens
  mountPath: /etc/monitorme/tokens
  readOnly: true
{{- end }}
{{- if .Values.apiTLS.enabled }}
- name: http-tls
  mountPath: /etc/monitorme/http-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "monitorme.apiVolumes" -}}
{{- if eq .Values.auth.mode "tokens" }}
- name: tokens
  secret:
    secretName: {{ required "auth.tokens.existingSecret: a Secret with the token file (monitorme token create) is required with auth.mode tokens" .Values.auth.tokens.existingSecret }}
{{- end }}
{{- if .Values.apiTLS.enabled }}
- name: http-tls
  secret:
    secretName: {{ required "apiTLS.existingSecret is required with apiTLS.enabled" .Values.apiTLS.existingSecret }}
{{- end }}
{{- end -}}

{{- define "monitorme.scheme" -}}
{{- if .Values.apiTLS.enabled }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{/* Probes of a role's HTTP server on port "http". */}}
{{- define "monitorme.probes" -}}
startupProbe:
  httpGet: {path: /readyz, port: http, scheme: {{ include "monitorme.scheme" . }}}
  periodSeconds: 2
  failureThreshold: 90
livenessProbe:
  httpGet: {path: /healthz, port: http, scheme: {{ include "monitorme.scheme" . }}}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: http, scheme: {{ include "monitorme.scheme" . }}}
  periodSeconds: 5
  failureThreshold: 2
{{- end -}}

{{/* Topology spread: pass (list $ "role"). */}}
{{- define "monitorme.spread" -}}
{{- $ := index . 0 -}}
{{- if $.Values.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: {{ $.Values.topologySpread.maxSkew }}
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ $.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "monitorme.selectorLabels" . | nindent 8 }}
  - maxSkew: {{ $.Values.topologySpread.maxSkew }}
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "monitorme.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{- define "monitorme.provisionArg" -}}
{{- if ne .Values.provisioning.mode "roles" }}
- --provision=false
{{- end }}
{{- end -}}
