"""The benchmark corpus: assistant replies written for voicewire, in the three shapes it must serve.

`chat` replies are what a voice assistant answers (one to four sentences, numbers, abbreviations),
`npc` lines are short game dialogue (exclamations, names, ellipses), `long` replies are explanations
with numbered or bulleted lists, figures and units, which exercise phrase cutting past the first
sentence and keep the player busy long enough for gaps to show.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    id: str
    kind: str  # "chat", "npc" or "long"
    text: str


_CHAT = [
    "Sure! Your next meeting is at 2:30 this afternoon with the design team, in room 4B.",
    "It's 18 degrees and partly cloudy in Lisbon right now, with a light breeze from the north. "
    "Expect rain after about 7 p.m., so you might want an umbrella tonight.",
    "I've set a timer for 12 minutes. I'll let you know when it's done.",
    "Good question. A kilometre is about 0.62 miles, so a 10K run is roughly 6.2 miles.",
    "Your order, number 48213, shipped yesterday and should arrive on Thursday between 9 and 11 a.m.",
    "I'm sorry, I couldn't find a flight under $300 for those dates. Would you like me to check the "
    "weekend before instead? Prices there start at $274.",
    "Done. I moved your dentist appointment with Dr. Patel to Friday, March 14th, at 10:15.",
    "The quickest route takes 23 minutes by bike, mostly along the river path. Traffic on Main Street "
    "is heavy, so I'd avoid it.",
    "Hmm, that recipe serves four. For six people, use 450 grams of pasta, three eggs and about 90 "
    "grams of cheese.",
    "Yes, the pharmacy on Elm Street is open until 9 tonight, and it has your prescription ready.",
    "Absolutely. I've added milk, two dozen eggs, and a bag of coffee beans to your shopping list.",
    "The total comes to $86.40, including tax. Shall I charge the card ending in 1142?",
]

_NPC = [
    "Halt! Who goes there? State your business at the gates of Varrow, stranger.",
    "Ah, a traveller! Come in, come in. The stew's hot and the ale is cheap, if you don't ask what's in "
    "either.",
    "You want the old mine? Nobody's been down there since the collapse... not since my brother.",
    "Three gold pieces for the map. Two, if you bring me back a wolf pelt. Deal?",
    "The dragon sleeps beneath the northern peak. Wake her, and the whole valley burns.",
    "Quick, behind the crates! The guards change shifts in ten seconds, and they're not the friendly kind.",
    "I knew your father, you know. Stubborn as a mule, brave as a lion, and terrible at cards.",
    "Well, well. The captain's been expecting you. Don't keep her waiting; she bites.",
    "Welcome to the Silver Anchor! Rooms are five silver a night, breakfast included, no pets, no fireballs.",
    "Listen carefully. Take the left fork, cross the bridge, and whatever you hear in the fog, do not "
    "turn around.",
    "Another one? Fine. But this is the last favour, and after this we're even. Understood?",
    "By the old gods, you actually did it! The well is clean again. The whole village owes you.",
]

_LONG = [
    "Here's how to reset your router. First, unplug it from the wall and wait 30 seconds. Second, plug "
    "it back in and wait for the power light to turn solid green, which takes about 2 minutes. Third, "
    "hold the reset button on the back for 10 seconds. Finally, reconnect to the network named on the "
    "sticker under the device, using the default password printed there.",
    "There are three main reasons the project slipped. One, the supplier delivered the parts 11 days "
    "late. Two, we lost two engineers to the migration work in October. Three, the test suite took "
    "4 hours per run, which slowed every fix. The new plan moves the launch to June 3rd and adds a "
    "weekly checkpoint.",
    "Compound interest works like this: you earn interest on your savings and on the interest you've "
    "already earned. With $1,000 at 5 percent a year, you'd have $1,050 after one year, $1,102.50 "
    "after two, and about $1,628.89 after ten. The longer you leave it, the faster it grows.",
    "To make a basic sourdough loaf, you'll need 500 grams of bread flour, 350 grams of water, 100 grams "
    "of active starter and 10 grams of salt. Mix the flour and water and rest it for an hour. Add the "
    "starter and salt, then fold the dough every 30 minutes for 2 hours. Shape it, let it proof "
    "overnight in the fridge, and bake at 250 degrees Celsius for 40 minutes.",
    "Your plan includes the following:\n- 50 gigabytes of mobile data per month.\n- Unlimited calls and "
    "texts within the country.\n- 5 gigabytes of roaming data in 40 countries.\n- A discount of 20 "
    "percent on a second line.\nThe monthly price is $35, and you can cancel with 30 days' notice.",
    "The French Revolution began in 1789, driven by debt, food shortages and anger at the privileges "
    "of the nobility. The storming of the Bastille on July 14th became its symbol. Over the next ten "
    "years, France abolished the monarchy, executed King Louis XVI in 1793, went through the Terror, "
    "and finally fell under Napoleon, who took power in 1799.",
    "Here is your itinerary for Tuesday. At 8:45, your train leaves from platform 6. You arrive in "
    "Leeds at 11:20 and the taxi will be waiting outside exit B. The client meeting runs from noon "
    "until 2 p.m., followed by a site visit. Your return train departs at 5:52, arriving home at 8:30.",
    "Photosynthesis happens in two stages. In the light-dependent reactions, chlorophyll absorbs "
    "sunlight and splits water, releasing oxygen and storing energy in ATP and NADPH. In the Calvin "
    "cycle, the plant uses that energy to turn carbon dioxide into glucose. Roughly 6 molecules of "
    "carbon dioxide and 6 of water make one molecule of glucose.",
    "Let's compare the two laptops. The first has a 14-inch screen, 16 gigabytes of memory and weighs "
    "1.3 kilograms, for $1,199. The second has a 16-inch screen, 32 gigabytes of memory and weighs 2.1 "
    "kilograms, for $1,649. If you travel a lot, I'd pick the first; for video editing, the second is "
    "worth the extra weight.",
    "Sure, here are the steps to file your expense report:\n1. Open the finance portal and choose New "
    "Report.\n2. Add each receipt as a separate line, with the date and the amount.\n3. Tag hotel "
    "costs as lodging and meals as subsistence.\n4. Submit it before the 25th so it's paid with this "
    "month's salary.",
    "A healthy adult should aim for about 150 minutes of moderate exercise a week, which is 30 "
    "minutes on five days. Add two sessions of strength training, such as squats, push-ups or "
    "resistance bands. If you're starting from zero, begin with 10-minute walks and add 5 minutes "
    "each week.",
    "The quarterly numbers look solid. Revenue grew 12 percent to $4.2 million, driven mostly by the "
    "enterprise tier. Costs rose 7 percent, mainly from hiring. Churn fell from 3.1 to 2.4 percent, "
    "and the average deal size reached $18,500, the highest we've recorded.",
]

CORPUS: tuple[Reply, ...] = tuple(
    Reply(f"{kind}-{i:02d}", kind, text)
    for kind, texts in (("chat", _CHAT), ("npc", _NPC), ("long", _LONG))
    for i, text in enumerate(texts)
)


def select(kinds: tuple[str, ...] | None = None, limit: int | None = None) -> list[Reply]:
    """Replies of the given kinds, interleaved (chat, npc, long, chat, ...) so a short run is mixed."""
    pools = [[r for r in CORPUS if r.kind == kind] for kind in (kinds or ("chat", "npc", "long"))]
    mixed = [r for group in itertools.zip_longest(*pools) for r in group if r is not None]
    return mixed[:limit] if limit else mixed
