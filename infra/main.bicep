// Tollgate in Azure: everything the gateway needs, in one resource group.
//
//   az deployment group create -g <group> -f infra/main.bicep -p infra/main.parameters.json
//
// Modules (plain resource declarations, no registry modules):
//   modules/storage.bicep           two storage accounts without shared keys: host and data
//   modules/keyvault.bicep          Key Vault, RBAC only, soft delete and purge protection
//   modules/monitoring.bicep        Log Analytics and Application Insights (local auth off)
//   modules/redis.bicep             optional Azure Cache for Redis, Microsoft Entra ID only
//   modules/content-safety.bicep    optional Azure AI Content Safety, Microsoft Entra ID only
//   modules/network.bicep           optional internal-only network
//   modules/private-endpoint.bicep  one private endpoint and its DNS registration
//   modules/rbac.bicep              least-privilege role assignments
//   modules/app.bicep               the Flex Consumption Function App and its settings
//   modules/workbook.bicep          the Azure Monitor workbook
//
// No secret goes in here or in the parameters file: upstream keys are Key Vault secrets whose
// *names* the upstreams parameter carries (key_secret); their values are set with
// `az keyvault secret set` after deployment (README, "Running in Azure").

@description('Region for every resource (Flex Consumption must be available there).')
param location string = resourceGroup().location

@description('Short name that prefixes resource names (lower-case letters and digits).')
@minLength(3)
@maxLength(11)
param baseName string = 'tollgate'

@description('Function App name (part of its host name); empty: func-<baseName>-<unique suffix>.')
param appName string = ''

param tags object = {
  application: 'tollgate'
}

@description('Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.11'

@description('Upstreams and models: the JSON of TOLLGATE_CONFIG_JSON ({"upstreams": {...}, "models": {...}}). It holds Key Vault secret names (key_secret), never keys.')
param upstreams object

// --- network --------------------------------------------------------------------------------

@description('true: the app has no public endpoint (a private endpoint in a new VNet instead), is VNet-integrated, and reaches storage, Key Vault, Redis and Content Safety through private endpoints.')
param internalOnly bool = false

@description('Public mode: CIDR ranges allowed to call the gateway (and its deployment endpoint). Empty: any address (gateway keys are the authentication).')
param allowedIpRanges array = []

@description('Internal mode: public IPs/CIDR ranges of operator machines allowed to reach Key Vault and the data storage account (to set keys, manage systems, read reports). Empty: private endpoints only.')
param operatorIpRanges array = []

@description('Internal mode: send outbound traffic through a NAT gateway with one static IP.')
param natGatewayEnabled bool = true

param vnetAddressPrefix string = '10.40.0.0/16'
param appSubnetPrefix string = '10.40.0.0/24'
param endpointSubnetPrefix string = '10.40.1.0/24'

// --- operators ------------------------------------------------------------------------------

@description('Object id of the user or group that operates the gateway (gets Key Vault Secrets Officer, registry and audit write, probe and usage read). Empty: assign roles yourself.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// --- scale ----------------------------------------------------------------------------------

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 32

@minValue(0)
param alwaysReadyInstances int = 0

@description('An internal URL that receives a small JSON POST when a system crosses a fraction of a budget (empty: alerts are logged and counted only).')
param budgetAlertUrl string = ''

// --- Redis (shared limits) ------------------------------------------------------------------

@description('Deploy Azure Cache for Redis so that limits hold across instances (recommended: Flex scales out).')
param redisEnabled bool = false

@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param redisSkuName string = 'Standard'

@allowed([
  'C'
  'P'
])
param redisSkuFamily string = 'C'

@minValue(0)
@maxValue(6)
param redisSkuCapacity int = 1

@description('What requests get when Redis is unreachable: open (admit, count locally) or closed (503).')
@allowed([
  'open'
  'closed'
])
param redisFailurePolicy string = 'open'

// --- Azure AI Content Safety (content policies, issue #20) -----------------------------------

@description('Deploy Azure AI Content Safety for content policies (TOLLGATE_CONTENT_SAFETY_ENDPOINT); the app signs in with its identity (local auth is off). false: only local patterns and blocklists.')
param contentSafety bool = false

@description('Region of the Content Safety account (it is not offered in every region); a private endpoint reaches it from the VNet\'s region.')
param contentSafetyLocation string = location

// --- gateway settings (README, "Every setting") ---------------------------------------------

@description('IANA time zone of daily and monthly quotas (TOLLGATE_QUOTA_TIMEZONE), e.g. Asia/Taipei.')
param quotaTimezone string = 'UTC'

@allowed([
  'DEBUG'
  'INFO'
  'WARNING'
  'ERROR'
])
param logLevel string = 'INFO'

@description('Overrides of the gateway\'s tunables, by setting name, values as strings, e.g. {"TOLLGATE_MAX_ATTEMPTS": "2", "TOLLGATE_UPSTREAM_READ_TIMEOUT": "120"}. See tunableDefaults below and the README\'s "Every setting".')
param tuning object = {}

// --- latency probe --------------------------------------------------------------------------

param probeEnabled bool = true

@description('NCRONTAB schedule of the latency probe (six fields, UTC).')
param probeSchedule string = '0 */15 * * * *'

@minValue(1)
@maxValue(50)
param probeRequests int = 5

@description('Comma-separated models to probe; empty: every chat model.')
param probeModels string = ''

@description('Name of the Key Vault secret that holds the probe\'s gateway key.')
param probeKeySecretName string = 'probe-gateway-key'

@description('CIDR ranges that may call the gateway at all (TOLLGATE_ALLOWED_NETWORKS); empty: any.')
param gatewayAllowedNetworks string = ''

@description('Proxies whose X-Forwarded-For is believed (TOLLGATE_TRUSTED_PROXIES): the worker\'s own.')
param trustedProxies string = '127.0.0.1/32,::1/128'

@description('Entra ID tenant whose app tokens are accepted as callers (TOLLGATE_ENTRA_TENANT_ID); empty: keys only.')
param entraTenantId string = ''

@description('The gateway app registration\'s audiences, comma-separated (TOLLGATE_ENTRA_AUDIENCES).')
param entraAudiences string = ''

@description('URL the probe calls the gateway at; empty: https://<the app\'s default host name>.')
param probeGatewayUrl string = ''

// --- retention ------------------------------------------------------------------------------

@description('Days the probe\'s CSV results are kept.')
@minValue(1)
param probeResultsRetentionDays int = 180

@description('Days usage records (issue #9) are kept: long enough for a year-on-year bill.')
@minValue(1)
param usageRetentionDays int = 400

@description('Days audit log blobs (issue #10) are kept.')
@minValue(1)
param auditRetentionDays int = 730

@description('Days opted-in prompt and completion logs (issue #10) are kept.')
@minValue(1)
param contentLogRetentionDays int = 30

@description('Days a deleted or overwritten data blob (the registry included) can be restored.')
@minValue(1)
@maxValue(365)
param blobSoftDeleteDays int = 14

@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteDays int = 90

// --- names ----------------------------------------------------------------------------------

var suffix = uniqueString(resourceGroup().id, baseName)
var short = take(toLower(baseName), 6)
var functionAppName = empty(appName) ? 'func-${baseName}-${suffix}' : appName
var hostStorageName = 'st${short}h${suffix}'
var dataStorageName = 'st${short}d${suffix}'
var keyVaultName = 'kv-${short}-${suffix}'
var redisName = 'redis-${baseName}-${suffix}'
var contentSafetyName = 'cs-${baseName}-${suffix}'
var vnetName = 'vnet-${baseName}-${suffix}'

var deploymentContainer = 'app-package'
var registryContainer = 'registry'
var probeResultsContainer = 'probe-results'
var usageContainer = 'usage'
var auditContainer = 'audit'
var contentLogsContainer = 'content-logs'

var privateDnsZoneNames = [
  'privatelink.azurewebsites.net'
  'privatelink.blob.${environment().suffixes.storage}'
  'privatelink.vaultcore.azure.net'
  'privatelink.redis.cache.windows.net'
  'privatelink.cognitiveservices.azure.com'
]

var publicAccess = internalOnly ? 'Disabled' : 'Enabled'
var operatorAccess = (internalOnly && empty(operatorIpRanges)) ? 'Disabled' : 'Enabled'
var firewallDefault = internalOnly ? 'Deny' : 'Allow'
var firewallIps = internalOnly ? operatorIpRanges : []

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${baseName}-${suffix}'
  location: location
  tags: tags
}

module network 'modules/network.bicep' = if (internalOnly) {
  name: 'network'
  params: {
    vnetName: vnetName
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetPrefix
    endpointSubnetPrefix: endpointSubnetPrefix
    natGatewayEnabled: natGatewayEnabled
    privateDnsZoneNames: privateDnsZoneNames
  }
}

// Host storage: only the Functions host's state and the deployment package. The deployment
// container has no lifecycle rule: Flex Consumption reads the package from it whenever an
// instance starts, so expiring it would take the app down at its next scale-out.
module hostStorage 'modules/storage.bicep' = {
  name: 'host-storage'
  params: {
    name: hostStorageName
    location: location
    tags: tags
    containers: [
      {
        name: deploymentContainer
        deleteAfterDays: 0
      }
    ]
    blobSoftDeleteDays: 0
    publicNetworkAccess: publicAccess
    defaultAction: firewallDefault
  }
}

// Tollgate's data. The registry container has no lifecycle rule: systems.json is the live
// list of systems and keys, overwritten in place, and must never expire; its earlier states are
// kept by blob soft delete for blobSoftDeleteDays (restorable with `az storage blob undelete`).
module dataStorage 'modules/storage.bicep' = {
  name: 'data-storage'
  params: {
    name: dataStorageName
    location: location
    tags: tags
    containers: [
      {
        name: registryContainer
        deleteAfterDays: 0
      }
      {
        name: probeResultsContainer
        deleteAfterDays: probeResultsRetentionDays
      }
      {
        name: usageContainer
        deleteAfterDays: usageRetentionDays
      }
      {
        name: auditContainer
        deleteAfterDays: auditRetentionDays
      }
      {
        name: contentLogsContainer
        deleteAfterDays: contentLogRetentionDays
      }
    ]
    blobSoftDeleteDays: blobSoftDeleteDays
    publicNetworkAccess: operatorAccess
    defaultAction: firewallDefault
    ipRules: firewallIps
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'key-vault'
  params: {
    name: keyVaultName
    location: location
    tags: tags
    softDeleteRetentionDays: keyVaultSoftDeleteDays
    publicNetworkAccess: operatorAccess
    defaultAction: firewallDefault
    ipRules: firewallIps
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: 'log-${baseName}-${suffix}'
    insightsName: 'appi-${baseName}-${suffix}'
    location: location
    tags: tags
    retentionDays: logRetentionDays
  }
}

module redis 'modules/redis.bicep' = if (redisEnabled) {
  name: 'redis'
  params: {
    name: redisName
    location: location
    tags: tags
    skuName: redisSkuName
    skuFamily: redisSkuFamily
    skuCapacity: redisSkuCapacity
    publicNetworkAccess: publicAccess
    principalId: identity.properties.principalId
    principalAlias: identity.name
  }
}

// Content Safety takes no firewall exceptions: only the app calls it (operators do not).
module contentSafetyAccount 'modules/content-safety.bicep' = if (contentSafety) {
  name: 'content-safety'
  params: {
    name: contentSafetyName
    location: contentSafetyLocation
    tags: tags
    publicNetworkAccess: publicAccess
    defaultAction: firewallDefault
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    principalId: identity.properties.principalId
    hostStorageAccountName: hostStorage.outputs.name
    dataStorageAccountName: dataStorage.outputs.name
    registryContainerName: registryContainer
    appWriteContainerNames: [
      probeResultsContainer
      usageContainer
      auditContainer
      contentLogsContainer
    ]
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.insightsName
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    // usage and content-logs: `tollgate systems purge` rewrites and deletes there (GDPR erasure)
    operatorWriteContainerNames: [
      registryContainer
      auditContainer
      usageContainer
      contentLogsContainer
    ]
    operatorReadContainerNames: [
      probeResultsContainer
    ]
    contentSafetyEnabled: contentSafety
    contentSafetyAccountName: contentSafetyName
  }
  dependsOn: [
    contentSafetyAccount
  ]
}

// The gateway's tunables at the code's own defaults (tests/test_infra.py checks they match
// shared/settings.py), set explicitly so an operator sees and changes them in one place.
// The first-byte timeout stays below the 230 s within which every Functions plan must start
// an HTTP response.
var tunableDefaults = {
  TOLLGATE_REGISTRY_REFRESH_SECONDS: '10'
  TOLLGATE_SECRET_TTL_SECONDS: '300'
  TOLLGATE_MAX_BODY_BYTES: '16777216'
  TOLLGATE_MAX_UPLOAD_BYTES: '104857600'
  TOLLGATE_UPSTREAM_CONNECT_TIMEOUT: '10'
  TOLLGATE_UPSTREAM_READ_TIMEOUT: '300'
  TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT: '180'
  TOLLGATE_UPSTREAM_TOTAL_TIMEOUT: '600'
  TOLLGATE_SSE_KEEPALIVE_SECONDS: '15'
  TOLLGATE_UPSTREAM_POOL_SIZE: '256'
  TOLLGATE_CONCURRENCY_LEASE_SECONDS: '600'
  TOLLGATE_BACKGROUND_WATCH_SECONDS: '21600'
  TOLLGATE_BATCH_WATCH_SECONDS: '93600'
  TOLLGATE_BATCH_FIRST_CHECK_SECONDS: '10'
  TOLLGATE_BUDGET_ALERT_THRESHOLDS: '0.5,0.8,1'
  TOLLGATE_CACHE_MAX_ENTRY_BYTES: '1048576'
  TOLLGATE_CACHE_MEMORY_BYTES: '67108864'
  TOLLGATE_DEFAULT_COMPLETION_TOKENS: '1024'
  TOLLGATE_MAX_ATTEMPTS: '3'
  TOLLGATE_FAILOVER_BUDGET_SECONDS: '60'
  TOLLGATE_DEFAULT_COOLDOWN_SECONDS: '10'
  TOLLGATE_BREAKER_FAILURES: '5'
  TOLLGATE_BREAKER_OPEN_SECONDS: '30'
  TOLLGATE_USAGE_FLUSH_SECONDS: '5'
  TOLLGATE_CONTENT_SAFETY_TIMEOUT_SECONDS: '2'
}

// Every setting the gateway reads in Azure (README, "Every setting"); the Functions host's own
// settings are added in app.bicep. Settings that only make sense on a laptop or on premises
// (TOLLGATE_SIMULATOR_URL, TOLLGATE_STORAGE_CONNECTION_STRING, TOLLGATE_SECRET_<NAME>, ...) are
// not set, nor is TOLLGATE_CONTENT_SAFETY_KEY_SECRET: the identity signs in to Content Safety.
// An empty TOLLGATE_CONTENT_SAFETY_ENDPOINT (contentSafety false) means local checks only.
// TOLLGATE_PROBE_SPOOL points at /tmp because the app's own folder is read-only on Flex
// Consumption.
var gatewaySettings = {
  AZURE_CLIENT_ID: identity.properties.clientId
  TOLLGATE_BUDGET_ALERT_URL: budgetAlertUrl
  TOLLGATE_CONFIG_JSON: string(upstreams)
  TOLLGATE_REGISTRY: '${dataStorage.outputs.blobEndpoint}${registryContainer}/systems.json'
  TOLLGATE_KEYVAULT_URL: keyVault.outputs.uri
  TOLLGATE_LOG_LEVEL: logLevel
  TOLLGATE_QUOTA_TIMEZONE: quotaTimezone
  TOLLGATE_PROBE_ENABLED: probeEnabled ? 'true' : 'false'
  TOLLGATE_PROBE_SCHEDULE: probeSchedule
  TOLLGATE_PROBE_REQUESTS: string(probeRequests)
  TOLLGATE_PROBE_MODELS: probeModels
  TOLLGATE_PROBE_RESULTS: '${dataStorage.outputs.blobEndpoint}${probeResultsContainer}'
  TOLLGATE_PROBE_SPOOL: '/tmp/tollgate/probe-spool'
  TOLLGATE_PROBE_KEY_SECRET: probeKeySecretName
  TOLLGATE_USAGE_RECORDS: '${dataStorage.outputs.blobEndpoint}${usageContainer}'
  TOLLGATE_CONTENT_LOG: '${dataStorage.outputs.blobEndpoint}${contentLogsContainer}'
  TOLLGATE_ALLOWED_NETWORKS: gatewayAllowedNetworks
  TOLLGATE_TRUSTED_PROXIES: trustedProxies
  TOLLGATE_ENTRA_TENANT_ID: entraTenantId
  TOLLGATE_ENTRA_AUDIENCES: entraAudiences
  TOLLGATE_CONTENT_SAFETY_ENDPOINT: contentSafety ? contentSafetyAccount.outputs.endpoint : ''
}

// Shared limits through Redis, signed in as the app's identity (its object id is the user name).
var redisSettings = {
  TOLLGATE_REDIS_URL: 'rediss://${redisName}.redis.cache.windows.net:6380/0'
  TOLLGATE_REDIS_AUTH: 'entra'
  TOLLGATE_REDIS_USERNAME: identity.properties.principalId
  TOLLGATE_REDIS_FAILURE_POLICY: redisFailurePolicy
}

module app 'modules/app.bicep' = {
  name: 'app'
  params: {
    name: functionAppName
    planName: 'plan-${baseName}-${suffix}'
    location: location
    tags: tags
    pythonVersion: pythonVersion
    identityId: identity.id
    identityClientId: identity.properties.clientId
    hostStorageAccountName: hostStorage.outputs.name
    deploymentContainerName: deploymentContainer
    appInsightsConnectionString: monitoring.outputs.connectionString
    gatewaySettings: union(tunableDefaults, gatewaySettings, redisEnabled ? redisSettings : {}, tuning)
    probeGatewayUrl: probeGatewayUrl
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    alwaysReadyInstances: alwaysReadyInstances
    internalOnly: internalOnly
    appSubnetId: internalOnly ? resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, 'app') : ''
    allowedIpRanges: allowedIpRanges
  }
  // The identity's roles, and in internal-only mode the private endpoints, must exist before
  // the host first starts and reaches its storage.
  dependsOn: [
    rbac
    network
    hostBlobEndpoint
    dataBlobEndpoint
    vaultEndpoint
    redisEndpoint
    contentSafetyEndpoint
  ]
}

// --- internal only: private endpoints -------------------------------------------------------

var endpointSubnetId = resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, 'endpoints')

module siteEndpoint 'modules/private-endpoint.bicep' = if (internalOnly) {
  name: 'pe-site'
  params: {
    name: 'pe-${functionAppName}'
    location: location
    tags: tags
    subnetId: endpointSubnetId
    targetId: app.outputs.id
    groupId: 'sites'
    dnsZoneId: resourceId('Microsoft.Network/privateDnsZones', privateDnsZoneNames[0])
  }
  dependsOn: [
    network
  ]
}

module hostBlobEndpoint 'modules/private-endpoint.bicep' = if (internalOnly) {
  name: 'pe-host-blob'
  params: {
    name: 'pe-${hostStorageName}-blob'
    location: location
    tags: tags
    subnetId: endpointSubnetId
    targetId: hostStorage.outputs.id
    groupId: 'blob'
    dnsZoneId: resourceId('Microsoft.Network/privateDnsZones', privateDnsZoneNames[1])
  }
  dependsOn: [
    network
  ]
}

module dataBlobEndpoint 'modules/private-endpoint.bicep' = if (internalOnly) {
  name: 'pe-data-blob'
  params: {
    name: 'pe-${dataStorageName}-blob'
    location: location
    tags: tags
    subnetId: endpointSubnetId
    targetId: dataStorage.outputs.id
    groupId: 'blob'
    dnsZoneId: resourceId('Microsoft.Network/privateDnsZones', privateDnsZoneNames[1])
  }
  dependsOn: [
    network
  ]
}

module vaultEndpoint 'modules/private-endpoint.bicep' = if (internalOnly) {
  name: 'pe-vault'
  params: {
    name: 'pe-${keyVaultName}'
    location: location
    tags: tags
    subnetId: endpointSubnetId
    targetId: keyVault.outputs.id
    groupId: 'vault'
    dnsZoneId: resourceId('Microsoft.Network/privateDnsZones', privateDnsZoneNames[2])
  }
  dependsOn: [
    network
  ]
}

module redisEndpoint 'modules/private-endpoint.bicep' = if (internalOnly && redisEnabled) {
  name: 'pe-redis'
  params: {
    name: 'pe-${redisName}'
    location: location
    tags: tags
    subnetId: endpointSubnetId
    targetId: resourceId('Microsoft.Cache/redis', redisName)
    groupId: 'redisCache'
    dnsZoneId: resourceId('Microsoft.Network/privateDnsZones', privateDnsZoneNames[3])
  }
  dependsOn: [
    network
    redis
  ]
}

module contentSafetyEndpoint 'modules/private-endpoint.bicep' = if (internalOnly && contentSafety) {
  name: 'pe-content-safety'
  params: {
    name: 'pe-${contentSafetyName}'
    location: location
    tags: tags
    subnetId: endpointSubnetId
    targetId: resourceId('Microsoft.CognitiveServices/accounts', contentSafetyName)
    groupId: 'account'
    dnsZoneId: resourceId('Microsoft.Network/privateDnsZones', privateDnsZoneNames[4])
  }
  dependsOn: [
    network
    contentSafetyAccount
  ]
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.insightsId
  }
}

output appName string = app.outputs.name
output gatewayUrl string = 'https://${app.outputs.defaultHostName}'
output keyVaultName string = keyVault.outputs.name
output dataStorageAccountName string = dataStorage.outputs.name
output registry string = '${dataStorage.outputs.blobEndpoint}${registryContainer}/systems.json'
output probeResults string = '${dataStorage.outputs.blobEndpoint}${probeResultsContainer}'
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
output appInsightsName string = monitoring.outputs.insightsName
