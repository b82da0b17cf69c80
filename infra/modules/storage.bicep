// One storage account with shared-key access disabled: every client signs in with Microsoft
// Entra ID (the app's managed identity, an operator's `az login`). Used twice by main.bicep:
// once for the Functions host (host state and deployment packages) and once for Tollgate's data.

@description('Storage account name (3-24 lower-case letters and digits).')
param name string

param location string
param tags object

@description('Replication: Standard_LRS, Standard_ZRS, ...')
param skuName string = 'Standard_LRS'

@description('Containers to create: [{ name: string, deleteAfterDays: int }]. deleteAfterDays 0 means no lifecycle rule for that container.')
param containers array

@description('Days a deleted or overwritten blob can still be restored (blob soft delete); 0 turns it off.')
@minValue(0)
@maxValue(365)
param blobSoftDeleteDays int = 7

@description('Enabled or Disabled. Disabled: reachable only through private endpoints.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Allow or Deny: what the firewall does with public traffic not matched by ipRules.')
@allowed([
  'Allow'
  'Deny'
])
param defaultAction string = 'Allow'

@description('Public IPv4 addresses or CIDR ranges allowed through the firewall when defaultAction is Deny.')
param ipRules array = []

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: defaultAction
      bypass: 'None'
      // The storage firewall takes single addresses without a /32 suffix.
      ipRules: [for ip in ipRules: {
        value: replace(ip, '/32', '')
        action: 'Allow'
      }]
    }
  }
}

var softDelete = (blobSoftDeleteDays > 0) ? { enabled: true, days: blobSoftDeleteDays } : { enabled: false }

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: softDelete
    containerDeleteRetentionPolicy: softDelete
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in containers: {
  parent: blobService
  name: container.name
  properties: {
    publicAccess: 'None'
  }
}]

// One rule per expiring container, scoped by prefix to that container only. Block blobs (the
// probe's CSVs) and append blobs (logs appended to over a day) are both deleted by age.
var expiring = filter(containers, c => c.deleteAfterDays > 0)
var rules = [for container in expiring: {
  enabled: true
  name: 'expire${replace(container.name, '-', '')}'
  type: 'Lifecycle'
  definition: {
    filters: {
      blobTypes: [
        'blockBlob'
        'appendBlob'
      ]
      prefixMatch: [
        '${container.name}/'
      ]
    }
    actions: {
      baseBlob: {
        delete: {
          daysAfterModificationGreaterThan: container.deleteAfterDays
        }
      }
    }
  }
}]

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (!empty(expiring)) {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: rules
    }
  }
  dependsOn: [
    blobContainers
  ]
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
