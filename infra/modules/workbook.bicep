// A shared Azure Monitor workbook on the Application Insights component: requests, tokens and
// cost by system and model, and the latency probe's direct vs gateway comparison. Its content
// is ../workbook/tollgate.workbook.json (edit it in the portal, then paste the JSON back).

param location string
param tags object

@description('Resource id of the Application Insights component the workbook queries.')
param appInsightsId string

param displayName string = 'Tollgate gateway'

var content = replace(loadTextContent('../workbook/tollgate.workbook.json'), '__APP_INSIGHTS_ID__', appInsightsId)

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID.
  name: guid(resourceGroup().id, appInsightsId, 'tollgate-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: content
  }
}

output id string = workbook.id
