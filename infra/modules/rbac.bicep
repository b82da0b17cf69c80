// Role assignments, each on the narrowest scope that works (never the resource group or the
// subscription, never Owner or Contributor):
//
//   the app's identity
//     Storage Blob Data Owner         host storage account (Functions host state, deployment
//                                     package; the host creates its own containers there)
//     Storage Blob Data Reader        the registry container (the gateway only reads it)
//     Storage Blob Data Contributor   each container the gateway writes: probe results, usage,
//                                     audit, content logs
//     Key Vault Secrets User          the vault (reads upstream keys)
//     Monitoring Metrics Publisher    the Application Insights component (local auth is off)
//     Cognitive Services User         the Content Safety account, when deployed (content
//                                     checks; local auth is off)
//     (Redis: a data access policy on the cache, in redis.bicep, not an Azure role)
//
//   an operator (optional, operatorPrincipalId)
//     Key Vault Secrets Officer       the vault (sets upstream keys and the probe's key)
//     Storage Blob Data Contributor   the registry and audit containers (`tollgate systems ...`)
//     Storage Blob Data Reader        probe results and usage (`tollgate report ...`)

@description('Object (principal) id of the app\'s user-assigned identity.')
param principalId string

param hostStorageAccountName string
param dataStorageAccountName string
param registryContainerName string

@description('Containers in the data account the gateway writes to.')
param appWriteContainerNames array

param keyVaultName string
param appInsightsName string

@description('Object id of a user or group that operates the gateway; empty: no operator roles.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Containers the operator writes (registry, audit).')
param operatorWriteContainerNames array = []

@description('Containers the operator reads (probe results, usage).')
param operatorReadContainerNames array = []

@description('true: main.bicep deployed Azure AI Content Safety (its contentSafety parameter).')
param contentSafetyEnabled bool = false

@description('The Content Safety account (its role is assigned only when contentSafetyEnabled).')
param contentSafetyAccountName string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  cognitiveServicesUser: 'a97b65f3-24c7-4388-baec-2e87135dc908'
}

var withOperator = !empty(operatorPrincipalId)
// Without an operator, no operator assignments: loop over nothing.
var operatorWrites = withOperator ? operatorWriteContainerNames : []
var operatorReads = withOperator ? operatorReadContainerNames : []

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
}

resource dataBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource registryContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: dataBlobs
  name: registryContainerName
}

resource appWriteContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for containerName in appWriteContainerNames: {
  parent: dataBlobs
  name: containerName
}]

resource operatorWriteContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for containerName in operatorWrites: {
  parent: dataBlobs
  name: containerName
}]

resource operatorReadContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for containerName in operatorReads: {
  parent: dataBlobs
  name: containerName
}]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource contentSafety 'Microsoft.CognitiveServices/accounts@2025-06-01' existing = {
  name: contentSafetyAccountName
}

resource appHostStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: hostStorage
  name: guid(hostStorage.id, principalId, roles.storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource appRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: registryContainer
  name: guid(registryContainer.id, principalId, roles.storageBlobDataReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource appDataContainers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (containerName, i) in appWriteContainerNames: {
  scope: appWriteContainers[i]
  name: guid(appWriteContainers[i].id, principalId, roles.storageBlobDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource appVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, principalId, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource appMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: insights
  name: guid(insights.id, principalId, roles.monitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Cognitive Services User: call the account's APIs (analyze text, blocklists), manage nothing.
resource appContentSafety 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (contentSafetyEnabled) {
  scope: contentSafety
  name: guid(contentSafety.id, principalId, roles.cognitiveServicesUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource operatorVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (withOperator) {
  scope: vault
  name: guid(vault.id, operatorPrincipalId, roles.keyVaultSecretsOfficer)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

resource operatorWriteRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (containerName, i) in operatorWrites: {
  scope: operatorWriteContainers[i]
  name: guid(operatorWriteContainers[i].id, operatorPrincipalId, roles.storageBlobDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}]

resource operatorReadRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (containerName, i) in operatorReads: {
  scope: operatorReadContainers[i]
  name: guid(operatorReadContainers[i].id, operatorPrincipalId, roles.storageBlobDataReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}]
