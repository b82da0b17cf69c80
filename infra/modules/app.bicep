// The Function App on the Flex Consumption plan: Python from a parameter, a user-assigned
// managed identity for everything (host storage, deployment package, Key Vault, blob data,
// Application Insights, Redis, Content Safety), HTTPS only, TLS 1.2, no FTP and no basic
// publishing credentials.

param name string
param planName string
param location string
param tags object

@description('Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.11'

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Storage account the Functions host keeps its state in (AzureWebJobsStorage).')
param hostStorageAccountName string

@description('Container (in the host storage account) that holds the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string (accepted only with a Microsoft Entra token: local auth is off).')
@secure()
param appInsightsConnectionString string

@description('Tollgate settings (TOLLGATE_*, AZURE_CLIENT_ID), built by main.bicep.')
param gatewaySettings object

@description('URL the latency probe and `tollgate bench` call the gateway at; empty: https://<default host name>.')
param probeGatewayUrl string = ''

@description('Upper bound of instances the plan scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Concurrent HTTP requests per instance before Flex adds one. The gateway is async I/O.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 32

@description('Instances kept warm for HTTP (0: scale to zero, with cold starts).')
@minValue(0)
param alwaysReadyInstances int = 0

@description('true: no public inbound access (a private endpoint instead) and VNet integration.')
param internalOnly bool = false

@description('Subnet for VNet integration (used when internalOnly).')
param appSubnetId string = ''

@description('Public inbound allow-list (CIDR ranges) when not internalOnly; empty allows every address.')
param allowedIpRanges array = []

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

var publicAllowList = internalOnly ? [] : allowedIpRanges
var restricted = !empty(publicAllowList)
var alwaysReady = (alwaysReadyInstances > 0) ? [ { name: 'http', instanceCount: alwaysReadyInstances } ] : []

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: internalOnly ? 'Disabled' : 'Enabled'
    virtualNetworkSubnetId: internalOnly ? appSubnetId : null
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: alwaysReady
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      ipSecurityRestrictionsDefaultAction: restricted ? 'Deny' : 'Allow'
      ipSecurityRestrictions: [for (cidr, i) in publicAllowList: {
        name: 'allow-${i}'
        ipAddress: cidr
        action: 'Allow'
        priority: 100 + i
      }]
      // The deployment (scm) endpoint follows the same allow-list, and needs Microsoft Entra
      // sign-in: basic publishing credentials are off below.
      scmIpSecurityRestrictionsUseMain: true
    }
  }
}

resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// What the Functions host itself reads. Host storage is identity-based: no connection string,
// no account key. Flex Consumption takes the runtime from functionAppConfig, so
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not set (Flex rejects them).
var hostSettings = {
  AzureWebJobsStorage__accountName: hostStorageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // HTTP streaming (azurefunctions-extensions-http-fastapi) on Python 3.12 and earlier.
  PYTHON_ENABLE_INIT_INDEXING: '1'
}

var probeSettings = {
  TOLLGATE_PROBE_GATEWAY_URL: empty(probeGatewayUrl) ? 'https://${site.properties.defaultHostName}' : probeGatewayUrl
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(hostSettings, gatewaySettings, probeSettings)
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
