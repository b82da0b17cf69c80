// The internal-only network (deployed when main.bicep's internalOnly is true): a VNet with a
// subnet the Function App integrates with (delegated to Microsoft.App/environments, as Flex
// Consumption requires), a subnet for private endpoints, private DNS zones linked to the VNet,
// and a NAT gateway with a static public IP so that calls to upstreams outside the VNet
// (Azure OpenAI, OpenAI) leave from one known address.

param vnetName string
param location string
param tags object

param addressPrefix string = '10.40.0.0/16'

@description('Subnet for Flex Consumption VNet integration (/27 or larger; /24 leaves room to scale).')
param appSubnetPrefix string = '10.40.0.0/24'

@description('Subnet for private endpoints.')
param endpointSubnetPrefix string = '10.40.1.0/24'

@description('Route outbound traffic through a NAT gateway with a static IP.')
param natGatewayEnabled bool = true

@description('Private DNS zones to create and link to the VNet.')
param privateDnsZoneNames array

resource natIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = if (natGatewayEnabled) {
  name: 'pip-${vnetName}-nat'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
  }
}

resource nat 'Microsoft.Network/natGateways@2024-05-01' = if (natGatewayEnabled) {
  name: 'ng-${vnetName}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    // Longer than the gateway's own upstream read timeout (300 s), so a slow stream survives.
    idleTimeoutInMinutes: 10
    publicIpAddresses: [
      {
        id: natIp.id
      }
    ]
  }
}

var natReference = natGatewayEnabled ? { id: nat.id } : null

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          natGateway: natReference
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'endpoints'
        properties: {
          addressPrefix: endpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for zoneName in privateDnsZoneNames: {
  name: zoneName
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (zoneName, i) in privateDnsZoneNames: {
  parent: zones[i]
  name: vnetName
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

output vnetId string = vnet.id
output appSubnetId string = vnet.properties.subnets[0].id
output endpointSubnetId string = vnet.properties.subnets[1].id
