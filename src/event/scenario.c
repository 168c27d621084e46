/* scenario.c -- the scenario catalogue and its aliases, as the brief lists them. */
#include "convdiag/scenario.h"

#include <string.h>

#include "convdiag/common.h"

static const cd_scenario_t scenarios[] = {
    {"ConversationInitialized", "ConversationInitiation"},
    {"CustomerIdentified", "ConversationInitiation"},
    {"VirtualAgentAssigned", "VirtualAgentInteraction"},
    {"ConversationEndedByVirtualAgent", "VirtualAgentInteraction"},
    {"VirtualAgentEscalatedToHumanAgent", "VirtualAgentInteraction"},
    {"DemandClassification", "Routing"},
    {"QueueAssignment", "Routing"},
    {"AgentAccepted", "HumanAgentInteraction"},
    {"AgentRejected", "HumanAgentInteraction"},
    {"AgentAcceptanceTimedOut", "HumanAgentInteraction"},
    {"AgentRejoined", "HumanAgentInteraction"},
    {"AgentSelfAssignment", "HumanAgentInteraction"},
    {"ConversationEndedByCustomer", "ConversationCompletion"},
    {"ConversationEndedByAgent", "ConversationCompletion"},
    {"AgentSessionClosed", "ConversationCompletion"},
    {"ConversationAbandonedByCustomer", "ConversationCompletion"},
    {"ConversationForceClosedBySupervisor", "ConversationCompletion"},
    {"ConversationClosed", "ConversationCompletion"},
};

static const struct {
    const char *alias;
    const char *canonical;
} aliases[] = {
    {"CreateConversation", "ConversationInitialized"},
    {"ConversationCreated", "ConversationInitialized"},
    {"Classification", "DemandClassification"},
    {"RTQ", "QueueAssignment"},
    {"RouteToQueue", "QueueAssignment"},
    {"AgentAccept", "AgentAccepted"},
    {"CSRAccepted", "AgentAccepted"},
    {"AgentReject", "AgentRejected"},
    {"CSRRejected", "AgentRejected"},
    {"AgentTimeout", "AgentAcceptanceTimedOut"},
    {"CSRNotificationTimeout", "AgentAcceptanceTimedOut"},
    {"CSRRejoined", "AgentRejoined"},
    {"AgentPickAssignment", "AgentSelfAssignment"},
    {"CSRPickedConversation", "AgentSelfAssignment"},
    {"CopilotAgentAssignedToConversation", "VirtualAgentAssigned"},
    {"BotChatEnd", "ConversationEndedByVirtualAgent"},
    {"BotEscalationToHuman", "VirtualAgentEscalatedToHumanAgent"},
    {"CopilotAgentEscalationToCSR", "VirtualAgentEscalatedToHumanAgent"},
    {"CustomerEndConversation", "ConversationEndedByCustomer"},
    {"CustomerEndedConversation", "ConversationEndedByCustomer"},
    {"AgentEndConversation", "ConversationEndedByAgent"},
    {"CSREndedConversation", "ConversationEndedByAgent"},
    {"AgentCloseSession", "AgentSessionClosed"},
    {"CSRClosedSession", "AgentSessionClosed"},
    {"CustomerDisconnect", "ConversationAbandonedByCustomer"},
    {"CustomerDisconnected", "ConversationAbandonedByCustomer"},
    {"SupervisorForceCloseConversation", "ConversationForceClosedBySupervisor"},
    {"SupervisorForceClosedConversation", "ConversationForceClosedBySupervisor"},
    {"ConversationClose", "ConversationClosed"},
};

static const cd_scenario_t *lookup_canonical(const char *name)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(scenarios); i++)
        if (strcmp(scenarios[i].name, name) == 0)
            return &scenarios[i];
    return NULL;
}

/* 47 names: a linear scan costs less than the JSON parse that precedes it. */
const cd_scenario_t *cd_scenario_lookup(const char *name)
{
    const cd_scenario_t *s = lookup_canonical(name);
    if (s)
        return s;
    for (size_t i = 0; i < CD_ARRAY_LEN(aliases); i++)
        if (strcmp(aliases[i].alias, name) == 0)
            return lookup_canonical(aliases[i].canonical);
    return NULL;
}

const cd_scenario_t *cd_scenario_all(size_t *count)
{
    *count = CD_ARRAY_LEN(scenarios);
    return scenarios;
}
