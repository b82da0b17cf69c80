// Azure Cache for Redis for limits shared by every instance (TOLLGATE_REDIS_URL). Access keys are
// disabled: the app signs in with Microsoft Entra ID as its managed identity
// (TOLLGATE_REDIS_AUTH=entra, TOLLGATE_REDIS_USERNAME = the identity's object id), through a
// data access policy assignment instead of an Azure role.

param name string
param location string
param tags object

@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string = 'Standard'

@allowed([
  'C'
  'P'
])
param skuFamily string = 'C'

@minValue(0)
@maxValue(6)
param skuCapacity int = 1

@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Object (principal) id of the app\'s user-assigned identity.')
param principalId string

@description('A readable name for that identity in the cache\'s access list.')
param principalAlias string

resource cache 'Microsoft.Cache/redis@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: skuFamily
      capacity: skuCapacity
    }
    redisVersion: '6'
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: publicNetworkAccess
    disableAccessKeyAuthentication: true
    redisConfiguration: {
      'aad-enabled': 'true'
    }
  }
}

// Data Contributor: read and write keys and run scripts (the limiter's Lua), no admin commands.
resource appAccess 'Microsoft.Cache/redis/accessPolicyAssignments@2024-11-01' = {
  parent: cache
  name: guid(cache.id, principalId, 'Data Contributor')
  properties: {
    accessPolicyName: 'Data Contributor'
    objectId: principalId
    objectIdAlias: principalAlias
  }
}

output id string = cache.id
output hostName string = cache.properties.hostName
output sslPort int = cache.properties.sslPort
