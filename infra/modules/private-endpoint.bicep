// One private endpoint with its private DNS zone registration. Used for the site (inbound),
// both storage accounts' blob endpoints, the vault, the cache and the Content Safety account
// when internalOnly is true.

param name string
param location string
param tags object

@description('Subnet the endpoint\'s private address comes from.')
param subnetId string

@description('Resource the endpoint connects to.')
param targetId string

@description('Sub-resource: sites, blob, vault, redisCache or account (Cognitive Services).')
param groupId string

@description('Private DNS zone that gets the endpoint\'s A record.')
param dnsZoneId string

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: {
          privateDnsZoneId: dnsZoneId
        }
      }
    ]
  }
}

output id string = endpoint.id
