// The names of the hub's socket events the console listens to, in one place (the AsyncAPI
// document at /schema/asyncapi.json describes each payload), and those it sends.
export const events = {
  // channels
  qrCode: "qrCode",
  clientReady: "clientReady",
  clientDisconnected: "clientDisconnected",
  channelStateChanged: "channelStateChanged",
  // crm
  leadCreated: "leadCreated",
  dealUpdated: "dealUpdated",
  importProgress: "importProgress",
  // inbox
  newMessage: "newMessage",
  messageSent: "messageSent",
  messageUpdated: "messageUpdated",
  messageDeleted: "messageDeleted",
  conversationUpdated: "conversationUpdated",
  conversationUnassigned: "conversationUnassigned",
  // tickets
  ticketCreated: "ticketCreated",
  ticketUpdated: "ticketUpdated",
  ticketAssigned: "ticketAssigned",
  commentAdded: "commentAdded",
  mentioned: "mentioned",
  slaWarning: "slaWarning",
  slaBreached: "slaBreached",
  ticketSuggested: "ticketSuggested",
  // campaigns
  campaignProgress: "campaignProgress",
  campaignCompleted: "campaignCompleted",
  campaignUpdated: "campaignUpdated",
  // billing
  usageUpdated: "usageUpdated",
  // AI answers, to the person who asked
  aiChunk: "aiChunk",
  aiDone: "aiDone",
  aiFailed: "aiFailed",
  // the kernel
  sessionEnded: "sessionEnded",
  resyncNeeded: "resyncNeeded",
  // the console's own: what it shows may be behind (a reconnection, or resyncNeeded)
  resync: "resync",
};

// What the console sends to the hub.
export const clientEvents = {
  markAsRead: "markAsRead",
};
