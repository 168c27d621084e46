/*
 * test_scenario.c -- the scenario catalogue against the product brief:
 * 18 canonical scenarios in 5 categories, the aliases upstream systems still
 * send, and unknown names.  The tables here are written from the brief.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convdiag/common.h"
#include "convdiag/scenario.h"

/* "Scenarios (operation_Name), by category" */
static const struct {
    const char *name;
    const char *category;
} canonical[] = {
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

static const char *const categories[] = {
    "ConversationInitiation", "VirtualAgentInteraction", "Routing", "HumanAgentInteraction",
    "ConversationCompletion",
};

/* "accept these aliases and store the canonical name" */
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

static const char *category_of(const char *name)
{
    for (size_t i = 0; i < CD_ARRAY_LEN(canonical); i++)
        if (strcmp(canonical[i].name, name) == 0)
            return canonical[i].category;
    return NULL;
}

static void test_every_canonical_name(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(canonical); i++) {
        const cd_scenario_t *s = cd_scenario_lookup(canonical[i].name);
        if (!s || strcmp(s->name, canonical[i].name) != 0 ||
            strcmp(s->category, canonical[i].category) != 0)
            print_message("%s: got %s / %s, expected %s / %s\n", canonical[i].name,
                          s ? s->name : "NULL", s ? s->category : "-", canonical[i].name,
                          canonical[i].category);
        assert_non_null(s);
        assert_string_equal(s->name, canonical[i].name);
        assert_string_equal(s->category, canonical[i].category);
    }
}

static void test_every_alias(void **state)
{
    (void)state;
    for (size_t i = 0; i < CD_ARRAY_LEN(aliases); i++) {
        const cd_scenario_t *s = cd_scenario_lookup(aliases[i].alias);
        const char *want_cat = category_of(aliases[i].canonical);
        assert_non_null(want_cat); /* the test's own tables agree */
        if (!s || strcmp(s->name, aliases[i].canonical) != 0 || strcmp(s->category, want_cat) != 0)
            print_message("%s: got %s / %s, expected %s / %s\n", aliases[i].alias,
                          s ? s->name : "NULL", s ? s->category : "-", aliases[i].canonical,
                          want_cat);
        assert_non_null(s);
        assert_string_equal(s->name, aliases[i].canonical);
        assert_string_equal(s->category, want_cat);
        /* An alias resolves to the very catalogue entry of its canonical name. */
        assert_ptr_equal(s, cd_scenario_lookup(aliases[i].canonical));
    }
}

static void test_catalogue(void **state)
{
    (void)state;
    size_t count = 0;
    const cd_scenario_t *all = cd_scenario_all(&count);
    assert_non_null(all);
    assert_int_equal(count, 18);
    assert_int_equal(count, CD_ARRAY_LEN(canonical));

    size_t per_category[CD_ARRAY_LEN(categories)] = {0};
    for (size_t i = 0; i < count; i++) {
        /* each entry is one of the brief's, with the brief's category */
        const char *cat = category_of(all[i].name);
        if (!cat)
            print_message("catalogue has '%s', which the brief does not list\n", all[i].name);
        assert_non_null(cat);
        assert_string_equal(all[i].category, cat);
        /* no duplicates */
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(all[i].name, all[j].name);
        /* lookup returns this very entry */
        assert_ptr_equal(cd_scenario_lookup(all[i].name), &all[i]);

        bool found = false;
        for (size_t c = 0; c < CD_ARRAY_LEN(categories); c++) {
            if (strcmp(all[i].category, categories[c]) == 0) {
                per_category[c]++;
                found = true;
            }
        }
        assert_true(found);
        assert_string_not_equal(all[i].category, CD_CATEGORY_OTHER);
    }
    /* five categories, sized as in the brief */
    assert_int_equal(per_category[0], 2);
    assert_int_equal(per_category[1], 3);
    assert_int_equal(per_category[2], 2);
    assert_int_equal(per_category[3], 5);
    assert_int_equal(per_category[4], 6);
}

static void test_unknown_names(void **state)
{
    (void)state;
    static const char *const unknown[] = {
        "",
        "Other",
        "CustomerSentSticker",
        "agentaccepted",        /* case matters */
        "AGENTACCEPTED",
        "rtq",
        "AgentAccepted ",       /* no trimming */
        " AgentAccepted",
        "AgentAcceptedX",
        "AgentAccepte",
        "CSRAccept",
        "ConversationInitiation", /* a category, not a scenario */
        "Routing",
        "HumanAgentInteraction",
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(unknown); i++) {
        const cd_scenario_t *s = cd_scenario_lookup(unknown[i]);
        if (s)
            print_message("'%s' found as %s\n", unknown[i], s->name);
        assert_null(s);
    }
    assert_string_equal(CD_CATEGORY_OTHER, "Other");
}

/* The lookup compares whole strings: a heap copy (not the same pointer) is found. */
static void test_lookup_by_value(void **state)
{
    (void)state;
    char *name = strdup("CSRPickedConversation");
    assert_non_null(name);
    const cd_scenario_t *s = cd_scenario_lookup(name);
    free(name);
    assert_non_null(s);
    assert_string_equal(s->name, "AgentSelfAssignment");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_canonical_name),
        cmocka_unit_test(test_every_alias),
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_lookup_by_value),
    };
    return cmocka_run_group_tests_name("scenario", tests, NULL, NULL);
}
