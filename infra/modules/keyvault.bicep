// Key Vault for upstream API keys. Access is by Azure RBAC only (no access policies): the app's
// identity gets Key Vault Secrets User, an operator Key Vault Secrets Officer (rbac.bicep).
// Soft delete and purge protection: a deleted key can be recovered and never purged early.

@description('Key Vault name (3-24 letters, digits and hyphens).')
param name string

param location string
param tags object

@description('Days a deleted vault or secret is kept before it is purged (7-90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionDays int = 90

@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@allowed([
  'Allow'
  'Deny'
])
param defaultAction string = 'Allow'

@description('Public IPv4 addresses or CIDR ranges allowed through the firewall when defaultAction is Deny.')
param ipRules array = []

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: defaultAction
      bypass: 'None'
      ipRules: [for ip in ipRules: {
        value: ip
      }]
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
