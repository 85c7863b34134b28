{{/* The release's name for every object: <release>-dovie, or the release name if it says dovie. */}}
{{- define "dovie.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dovie.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dovie.labels" -}}
{{ include "dovie.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "dovie.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "dovie.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dovie.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dovie.secretName" -}}
{{- default (include "dovie.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "dovie.cluster" -}}
{{- eq .Values.mode "cluster" -}}
{{- end -}}

{{/* The secret keys the chart passes as environment variables: env name → secret key. */}}
{{- define "dovie.secretEnv" -}}
DOVIE_JWT_SECRET: jwt-secret
DOVIE_FILES__MASTER_KEY: file-master-key
DOVIE_FILES__MASTER_KEY_ID: file-master-key-id
DOVIE_FILES__S3__ACCESS_KEY_ID: s3-access-key-id
DOVIE_FILES__S3__SECRET_ACCESS_KEY: s3-secret-access-key
DOVIE_PROVIDERS__FACEBOOK__APP_SECRET: facebook-app-secret
DOVIE_PROVIDERS__TWILIO__AUTH_TOKEN: twilio-auth-token
DOVIE_LOCATION__STATIC_API_KEY: google-maps-static-api-key
{{- end -}}

{{/* Environment shared by the server and the migration Job: where the stores are. */}}
{{- define "dovie.storeEnv" -}}
{{- if eq .Values.mode "cluster" }}
- name: DOVIE_STORE
  value: scylla
- name: DOVIE_SCYLLA
  value: {{ .Values.cluster.scylla.contactPoints | quote }}
- name: DOVIE_KEYSPACE
  value: {{ .Values.cluster.scylla.keyspace | quote }}
- name: DOVIE_CQL__REPLICATION_FACTOR
  value: {{ .Values.cluster.scylla.replicationFactor | int | quote }}
- name: DOVIE_BUS
  value: redis
- name: DOVIE_REDIS
  value: {{ .Values.cluster.redis.url | quote }}
{{- else }}
- name: DOVIE_STORE
  value: embedded
- name: DOVIE_BUS
  value: local
{{- end }}
- name: DOVIE_DATA_DIR
  value: /var/lib/dovie
{{- end -}}

{{/*
A map as TOML: its scalar keys, then each map key as a [table] (nested: [a.b]). Helm reads
numbers as floats; whole ones are written as integers, as Dovie's config expects.
Argument: (list "<table name or empty>" <map>).
*/}}
{{- define "dovie.tomlTable" -}}
{{- $prefix := index . 0 -}}
{{- $table := index . 1 -}}
{{- range $k, $v := $table }}
{{- if not (kindIs "map" $v) }}
{{ $k }} = {{ include "dovie.tomlValue" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $table }}
{{- if kindIs "map" $v }}
{{- $name := ternary $k (printf "%s.%s" $prefix $k) (eq $prefix "") }}

[{{ $name }}]
{{- include "dovie.tomlTable" (list $name $v) }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "dovie.tomlValue" -}}
{{- if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (floor .) (float64 .) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "bool" .) -}}
{{- . -}}
{{- else if kindIs "slice" . -}}
[{{ range $i, $e := . }}{{ if $i }}, {{ end }}{{ include "dovie.tomlValue" $e }}{{ end }}]
{{- else -}}
{{- toJson (toString .) -}}
{{- end -}}
{{- end -}}

{{/* The chart-made Secret's data: only the keys given a value. */}}
{{- define "dovie.secretData" -}}
{{- $s := .Values.secrets -}}
{{- $keys := dict "jwt-secret" $s.jwtSecret "file-master-key" $s.fileMasterKey "file-master-key-id" $s.fileMasterKeyId "s3-access-key-id" $s.s3AccessKeyId "s3-secret-access-key" $s.s3SecretAccessKey "facebook-app-secret" $s.facebookAppSecret "twilio-auth-token" $s.twilioAuthToken "google-maps-static-api-key" $s.googleMapsStaticApiKey "apns-key" $s.apnsKey -}}
{{- range $k, $v := $keys }}
{{- if $v }}
{{ $k }}: {{ $v | b64enc | quote }}
{{- end }}
{{- end }}
{{- end -}}
