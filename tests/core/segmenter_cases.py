"""Expected phrases for the segmenter corpus, written for voicewire.

Each case is (category, policy, marked text): the text an LLM streams, with a "¦" wherever a phrase
must end, so the expected phrases are `marked.split("¦")` and the input is the marked text without
the marks (a phrase per source line, long ones continued on the next). Policies are pinned in
test_segmenter_corpus.py: "sentences" cuts at every sentence end and nowhere else (sentence-boundary
detection in isolation); "chatterbox" and "piper" are the engine policies as first tuned.
"""

CASES: list[tuple[str, str, str]] = [
    # -- assistant ---------------------------------------------------------------------------------------
    ('assistant', 'chatterbox',
     'Sure! Your next meeting is at 2:30 this afternoon ¦'
     'with the design team, in room 4B.'),
    ('assistant', 'chatterbox',
     "I've set a timer for 12 minutes. ¦"
     "I'll let you know when it's done."),
    ('assistant', 'chatterbox',
     'Good question. A kilometre is about 0.62 miles, ¦'
     'so a 10K run is roughly 6.2 miles.'),
    ('assistant', 'chatterbox',
     "I'm sorry, I couldn't find a flight ¦"
     'under $300 for those dates. ¦'
     'Would you like me to check the weekend before instead?'),
    ('assistant', 'chatterbox',
     'Done. I moved your dentist appointment with Dr. Patel ¦'
     'to Friday, March 14th, at 10:15.'),
    ('assistant', 'chatterbox',
     'Yes. The pharmacy on Elm St. is open ¦'
     'until 9 p.m. tonight, and your prescription is ready.'),
    ('assistant', 'chatterbox',
     "Here's the short version: the update fixes the login bug, ¦"
     'speeds up search, and adds dark mode.'),
    ('assistant', 'chatterbox',
     'Of course. To reset your password, ¦'
     'open Settings, tap Account, and choose Reset Password. ¦'
     "You'll get an e-mail within a minute."),
    ('assistant', 'chatterbox',
     'The flight from New York to London takes ¦'
     "about seven hours. With the time difference, you'll land the next morning "
     'around 8 a.m. local time.'),
    ('assistant', 'chatterbox',
     "That's a great idea! ¦"
     'Let me add it to your list.'),
    ('assistant', 'chatterbox',
     'Honestly, I think the second option is better; ¦'
     "it's cheaper, faster to set up, and easier to maintain over time."),
    ('assistant', 'chatterbox',
     'According to the latest data, ¦'
     'the population of Tokyo is roughly 14 million, while the greater metro area has '
     'about 37 million people.'),
    ('assistant', 'chatterbox',
     "No problem. I've cancelled the 7:45 alarm and set ¦"
     'a new one for 8:15 instead.'),
    ('assistant', 'chatterbox',
     'Okay. Let me think about that for a second. ¦'
     'The best time to visit is probably late spring, when the weather is mild and '
     'the crowds are small.'),
    ('assistant', 'chatterbox',
     'Thanks for waiting. I found three restaurants nearby ¦'
     "that are open now: Luigi's, the Green Bowl, and Sakura House."),
    ('assistant', 'piper',
     'Sure! Your next meeting ¦'
     'is at 2:30 this afternoon with the design team, in room 4B.'),
    ('assistant', 'piper',
     'Good question. ¦'
     'A kilometre is about 0.62 miles, so a 10K run is roughly 6.2 miles.'),
    ('assistant', 'piper',
     'Done. I moved your dentist appointment ¦'
     'with Dr. Patel to Friday, March 14th, at 10:15.'),
    ('assistant', 'piper',
     'Hmm, that recipe serves four. ¦'
     'For six people, use 450 grams of pasta, three eggs and about 90 grams of cheese.'),
    ('assistant', 'piper',
     'Of course. ¦'
     'To reset your password, open Settings, tap Account, and choose Reset Password.'),
    ('assistant', 'piper',
     'Yes, it will rain tomorrow. ¦'
     'Take an umbrella.'),
    ('assistant', 'piper',
     'I could not reach the server. ¦'
     'Please check your connection and try again.'),
    ('assistant', 'piper',
     'The total comes to $86.40, ¦'
     'including tax. ¦'
     'Shall I charge the card ending in 1142?'),
    ('assistant', 'chatterbox',
     'Great news: your package arrived early. ¦'
     "It's waiting at the front desk, and the desk is open until 6 p.m."),
    ('assistant', 'chatterbox',
     'Let me check that for you. ¦'
     'One moment.'),
    # -- npc ---------------------------------------------------------------------------------------------
    ('npc', 'chatterbox',
     'Halt! Who goes there? ¦'
     'State your business at the gates of Varrow, stranger.'),
    ('npc', 'chatterbox',
     'Ah, a traveller! Come in, ¦'
     "come in. The stew's hot and the ale is cheap, if you don't ask what's in either."),
    ('npc', 'chatterbox',
     'You want the old mine? ¦'
     "Nobody's been down there since the collapse... not since my brother."),
    ('npc', 'chatterbox',
     'Three gold pieces for the map. ¦'
     'Two, if you bring me back a wolf pelt. ¦'
     'Deal?'),
    ('npc', 'chatterbox',
     'The dragon sleeps beneath the northern peak. ¦'
     'Wake her, and the whole valley burns.'),
    ('npc', 'chatterbox',
     'Quick, behind the crates! ¦'
     "The guards change shifts in ten seconds, and they're not the friendly kind."),
    ('npc', 'chatterbox',
     "*wipes the counter* What'll it be, ¦"
     "friend? We've got mead, cider, and something the dwarves left behind."),
    ('npc', 'chatterbox',
     '"You\'re late," the captain growled. ¦'
     '"The ship sails at dawn, with or without you."'),
    ('npc', 'chatterbox',
     'Listen carefully. Take the left fork, ¦'
     'cross the bridge, and whatever you hear in the fog, do not turn around.'),
    ('npc', 'chatterbox',
     'Welcome, welcome! Sir Aldric the Bold, ¦'
     'at your service. Mind the goat; he bites.'),
    ('npc', 'chatterbox',
     "I... I don't know what you're talking about. ¦"
     'I was home all night, I swear it.'),
    ('npc', 'chatterbox',
     'Ha! You call that a sword? ¦'
     'My grandmother swings a ladle harder than that.'),
    ('npc', 'piper',
     'Halt! Who goes there? ¦'
     'State your business at the gates of Varrow, stranger.'),
    ('npc', 'piper',
     'Ah, a traveller! ¦'
     'Come in, come in. ¦'
     "The stew's hot and the ale is cheap."),
    ('npc', 'piper',
     'Well, well. ¦'
     "The captain's been expecting you. ¦"
     "Don't keep her waiting; she bites."),
    ('npc', 'piper',
     'Another one? ¦'
     "Fine. But this is the last favour, and after this we're even. ¦"
     'Understood?'),
    ('npc', 'piper',
     'Run! Now! ¦'
     "They're coming over the wall!"),
    ('npc', 'piper',
     'Psst. Over here. ¦'
     'Got something you might want to see... for a price.'),
    ('npc', 'chatterbox',
     'What? No! Not the lighthouse! ¦'
     "That's where I keep the... never mind. ¦"
     'Forget I said anything.'),
    # -- markdown ----------------------------------------------------------------------------------------
    ('markdown', 'chatterbox',
     '**Short answer:** yes, you can. ¦'
     'The longer answer depends on your plan, so check the billing page first.'),
    ('markdown', 'chatterbox',
     '# Getting started\n\nFirst, install the package with pip. ¦'
     'Then run the setup command and follow the prompts.'),
    ('markdown', 'chatterbox',
     'Here is the command:\n¦'
     '```bash\npip install voicewire\nvoicewire --port 8765\n```\nThat starts the server '
     'on port 8765 with the default voice.'),
    ('markdown', 'chatterbox',
     'Use `voicewire.say()` for one-off lines. ¦'
     'It returns the audio as a NumPy array, ready to play.'),
    ('markdown', 'chatterbox',
     'You can read more in [the docs](https://example.com/docs). ¦'
     'They cover every option in detail.'),
    ('markdown', 'chatterbox',
     '| Plan | Price |\n|------|-------|\n| Basic | $5 |\n¦'
     '| Pro | $15 |\n\nMost people pick Pro because it includes cloning.'),
    ('markdown', 'chatterbox',
     '> Simplicity is prerequisite for reliability.\n\n¦'
     'That quote is from Dijkstra, and it still holds today.'),
    ('markdown', 'chatterbox',
     'The ~~old~~ new endpoint is faster. ¦'
     'It also supports *streaming* and __batching__ out of the box.'),
    ('markdown', 'chatterbox',
     "Here's a quick example:\n\n¦"
     '```python\ndef greet(name):\n    return f"Hello, {name}. Welcome!"\n```\n\nCall it '
     'with any name and it returns the greeting.'),
    ('markdown', 'chatterbox',
     'Note that 2 * 3 = 6 and 2 * 4 = 8, ¦'
     'so the pattern is simple. ¦'
     'Multiply, then add.'),
    ('markdown', 'chatterbox',
     'The `snake_case` names in `config.py` map to the __init__ arguments. ¦'
     'Keep them in sync, please.'),
    ('markdown', 'chatterbox',
     '---\n\n**Summary.** Everything works. The last test run took 4.2 seconds ¦'
     'on the CI machine.'),
    ('markdown', 'piper',
     '## Step 1: Install\n\n¦'
     'Run the installer. ¦'
     'It takes about a minute.\n\n¦'
     '## Step 2: Configure\n\n¦'
     'Open the settings file.'),
    ('markdown', 'piper',
     '- **Speed:** fast\n¦'
     '- **Cost:** low\n¦'
     '- **Quality:** good, but not perfect'),
    ('markdown', 'piper',
     'Try this: `ls -la ~/.config`. ¦'
     'It lists the hidden files, too.'),
    ('markdown', 'piper',
     'I love this idea 🎉! ¦'
     'It is simple, cheap, and fun 😀. ¦'
     "Let's do it 👍."),
    ('markdown', 'chatterbox',
     '### Results\n\n| Model | Score |\n|---|---|\n| A | 91.2 |\n\n¦'
     'Model A scored 91.2 points, the best of the three.'),
    # -- lists -------------------------------------------------------------------------------------------
    ('lists', 'chatterbox',
     'Your plan includes the following:\n¦'
     '- 50 gigabytes of mobile data per month.\n¦'
     '- Unlimited calls and texts within the country.\n¦'
     '- A discount of 20 percent on a second line.\n¦'
     'The monthly price is $35.'),
    ('lists', 'chatterbox',
     'Sure, here are the steps:\n¦'
     '1. Open the finance portal and choose New Report.\n¦'
     '2. Add each receipt as a separate line.\n¦'
     '3. Submit it before the 25th.'),
    ('lists', 'chatterbox',
     'To bake bread you need:\n¦'
     '* flour\n* water\n* salt\n* yeast\n¦'
     'Mix them and knead for ten minutes.'),
    ('lists', 'chatterbox',
     'Three reasons: 1. it is cheap, ¦'
     '2. it is fast, and 3. it is reliable. ¦'
     "That's why we chose it."),
    ('lists', 'chatterbox',
     '1. Preheat the oven to 200 degrees.\n¦'
     '2. Grease the tin.\n¦'
     '3. Bake for 25 minutes, or until golden.'),
    ('lists', 'piper',
     'Shopping list:\n¦'
     '- milk\n- eggs\n¦'
     '- bread\n- coffee beans'),
    ('lists', 'piper',
     'Options:\n  a) take the bus\n  ¦'
     'b) take a taxi\n  ¦'
     'c) walk'),
    ('lists', 'piper',
     '1) Unplug the router. ¦'
     '2) Wait 30 seconds. ¦'
     '3) Plug it back in.'),
    ('lists', 'sentences',
     '1. First item.\n¦'
     '2. Second item.\n¦'
     '10. Tenth item.'),
    ('lists', 'sentences',
     'Steps:\n¦'
     '1. Open it. ¦'
     'Then close it.\n¦'
     '2. Done.'),
    # -- numbers -----------------------------------------------------------------------------------------
    ('numbers', 'sentences',
     'Pi is about 3.14159. ¦'
     'It never ends.'),
    ('numbers', 'sentences',
     'The answer is 2.718. ¦'
     'That is e.'),
    ('numbers', 'sentences',
     'It costs $19.99 per month. ¦'
     'You can cancel anytime.'),
    ('numbers', 'sentences',
     'Parking is $5. ¦'
     'The meter takes cards.'),
    ('numbers', 'sentences',
     'Rates rose by 4.5% this year. ¦'
     'Loans got pricier.'),
    ('numbers', 'sentences',
     'The city has 1,234,567 residents. ¦'
     'It keeps growing.'),
    ('numbers', 'sentences',
     'Version v2.0.1 is out. ¦'
     'Please update.'),
    ('numbers', 'sentences',
     'The train leaves at 10:30. ¦'
     'Do not be late.'),
    ('numbers', 'sentences',
     'Call 555-123-4567 after 6. ¦'
     'Ask for Dana.'),
    ('numbers', 'sentences',
     'The form is dated 04/20/2025. ¦'
     'Keep a copy.'),
    ('numbers', 'sentences',
     'Read chapter 3. ¦'
     'It explains the method.'),
    ('numbers', 'sentences',
     'Set the oven to 180.5 degrees. ¦'
     'Wait ten minutes.'),
    ('numbers', 'sentences',
     'The temperature dropped to -3.5 overnight. ¦'
     'Roads froze.'),
    ('numbers', 'sentences',
     'Mix 1/2 cup of sugar with 3/4 cup of flour. ¦'
     'Stir well.'),
    ('numbers', 'sentences',
     'We finished 1st and they came 22nd. ¦'
     'Not bad.'),
    ('numbers', 'sentences',
     'Das kostet 22,50 Euro. ¦'
     'Danke.'),
    ('numbers', 'sentences',
     'The value is 1.23e4 in total. ¦'
     'That is large.'),
    ('numbers', 'sentences',
     'The score was 3-1 at half time. ¦'
     'Then it rained.'),
    ('numbers', 'sentences',
     'Revenue hit $4.2M in Q3. ¦'
     'Margins improved.'),
    ('numbers', 'sentences',
     'I woke at 3:00 a.m. ¦'
     'The house was quiet.'),
    ('numbers', 'sentences',
     "It's 20°C outside. ¦"
     'Shorts weather.'),
    ('numbers', 'sentences',
     'Batch no. 42 failed. ¦'
     'Batch no. 43 passed.'),
    # -- web ---------------------------------------------------------------------------------------------
    ('web', 'sentences',
     'Visit www.example.com. ¦'
     'It has the schedule.'),
    ('web', 'sentences',
     'The docs live at https://docs.example.org/v1.2/index.html now. ¦'
     'Read them first.'),
    ('web', 'sentences',
     'Write to john.doe@example.com. ¦'
     'He answers within a day.'),
    ('web', 'sentences',
     'Is the address support@example.ai? ¦'
     'I think so.'),
    ('web', 'sentences',
     'Open report.pdf and check page two. ¦'
     'The totals are there.'),
    ('web', 'sentences',
     'Edit the file config.yaml. ¦'
     'Then restart the server.'),
    ('web', 'sentences',
     'Did you try https://example.com/search?q=voice&lang=en yet? ¦'
     'It works.'),
    ('web', 'sentences',
     'Our site, example.co.uk, was down. ¦'
     'It is back now.'),
    ('web', 'sentences',
     'Install it with pip install voicewire==0.1.0. ¦'
     'It takes a minute.'),
    ('web', 'sentences',
     'The API is at api.example.com/v2/users. ¦'
     'Use a token.'),
    ('web', 'sentences',
     'Run ./setup.sh first. ¦'
     'Then run make.'),
    ('web', 'sentences',
     'Node.js and Vue.js are both supported. ¦'
     'Pick one.'),
    ('web', 'sentences',
     'Email me at a.b@c.io. ¦'
     'Or call.'),
    # -- abbrev ------------------------------------------------------------------------------------------
    ('abbrev', 'sentences',
     'Dr. Smith will see you now. ¦'
     'Please take a seat.'),
    ('abbrev', 'sentences',
     'Mr. and Mrs. Jones arrived at noon. ¦'
     'They brought pie.'),
    ('abbrev', 'sentences',
     'The museum is on St. Louis Avenue. ¦'
     'It opens at nine.'),
    ('abbrev', 'sentences',
     'Acme Inc. in Boston makes anvils. ¦'
     'Their prices are fair.'),
    ('abbrev', 'sentences',
     'Bring a tool, e.g. a hammer or a wrench. ¦'
     'Then start.'),
    ('abbrev', 'sentences',
     'Use the short form, i.e. the one on page two. ¦'
     'It is faster.'),
    ('abbrev', 'sentences', 'We packed tents, stoves, etc. and left early.'),
    ('abbrev', 'sentences',
     'We packed tents, stoves, etc. ¦'
     'Then we drove north.'),
    ('abbrev', 'sentences',
     'It was Lakers vs. Celtics last night. ¦'
     'The Celtics won.'),
    ('abbrev', 'sentences',
     'See No. 5 on the list. ¦'
     'It is the cheapest.'),
    ('abbrev', 'sentences',
     'The answer is no. ¦'
     'Then we try again tomorrow.'),
    ('abbrev', 'sentences',
     'It takes approx. 3 hours by car. ¦'
     'The train is faster.'),
    ('abbrev', 'sentences',
     'Our Ph.D. students present on Friday. ¦'
     'Everyone is welcome.'),
    ('abbrev', 'sentences',
     'J. K. Rowling wrote the books. ¦'
     'They sold millions.'),
    ('abbrev', 'sentences',
     'J. R. R. Tolkien taught at Oxford. ¦'
     'He loved languages.'),
    ('abbrev', 'sentences',
     'The U.S. economy grew last year. ¦'
     'Exports rose.'),
    ('abbrev', 'sentences',
     'She moved to the U.S. ¦'
     'Then she found work in Ohio.'),
    ('abbrev', 'sentences',
     'The meeting is at 3 p.m. on Friday. ¦'
     'Bring the slides.'),
    ('abbrev', 'sentences',
     'We met at 3 p.m. ¦'
     'Then we walked to the park.'),
    ('abbrev', 'sentences',
     'Prof. Ada Lee and Capt. Ray Ortiz will speak. ¦'
     'Seats are limited.'),
    ('abbrev', 'sentences',
     'Martin Luther King Jr. gave the speech in 1963. ¦'
     'It changed history.'),
    ('abbrev', 'sentences',
     'See Fig. 3 for details. ¦'
     'The curve flattens after day ten.'),
    ('abbrev', 'sentences',
     'Take vitamin C. ¦'
     'It helps a little.'),
    ('abbrev', 'sentences',
     'The package ships from the U.K. ¦'
     'It should arrive by Monday.'),
    ('abbrev', 'sentences',
     'Ask Dr.Lee about it. ¦'
     'She knows.'),
    ('abbrev', 'sentences',
     'We flew Washington, D.C. to Denver. ¦'
     'It was bumpy.'),
    # -- quotes ------------------------------------------------------------------------------------------
    ('quotes', 'sentences',
     'He said "Stop." ¦'
     'Then he left.'),
    ('quotes', 'sentences',
     '"Stop!" she said. ¦'
     'Nobody moved.'),
    ('quotes', 'sentences',
     '"Go," he said, "before it is too late." ¦'
     'We ran.'),
    ('quotes', 'sentences',
     "The sign read 'No Entry.' ¦"
     'So we turned back.'),
    ('quotes', 'sentences',
     'It was “perfect.” ¦'
     'Then it rained.'),
    ('quotes', 'sentences',
     '(See the note above.) ¦'
     'Next, open the lid.'),
    ('quotes', 'sentences',
     'The result (about 4.2 in total, i.e. more than expected) surprised us. ¦'
     'We checked twice.'),
    ('quotes', 'sentences',
     'Call the office (ask for Dr. Brown. He knows.) tomorrow. ¦'
     'Thanks.'),
    ('quotes', 'sentences',
     'Use the [settings page. Not the other one.] carefully. ¦'
     'Done.'),
    ('quotes', 'sentences',
     'She asked, “Are you coming?” ¦'
     'I nodded.'),
    ('quotes', 'sentences',
     'Wait... what? ¦'
     'That cannot be right.'),
    ('quotes', 'sentences',
     'Well... I suppose so. ¦'
     'Let us go.'),
    ('quotes', 'sentences', 'It was late… We went home.'),
    ('quotes', 'sentences',
     'Really?! ¦'
     'That is amazing!! ¦'
     'Tell me more.'),
    ('quotes', 'sentences',
     'What?!? ¦'
     'No way. ¦'
     'Show me.'),
    ('quotes', 'sentences',
     'He whispered: "Not yet." ¦'
     'And waited.'),
    # -- multi -------------------------------------------------------------------------------------------
    ('multi', 'sentences',
     '你好。¦'
     '今天天气很好。¦'
     '我们去公园吧！'),
    ('multi', 'sentences',
     'これはペンです。¦'
     'あれは本です。'),
    ('multi', 'sentences',
     'मेरा नाम राम है। ¦'
     'मैं दिल्ली में रहता हूँ।'),
    ('multi', 'sentences',
     'كيف حالك؟ ¦'
     'أنا بخير.'),
    ('multi', 'sentences',
     '¿Dónde está la estación? ¦'
     'Está a dos calles.'),
    ('multi', 'sentences',
     '¡Hola! ¦'
     '¿Qué tal? ¦'
     'Muy bien, gracias.'),
    ('multi', 'sentences',
     'Il fait beau aujourd’hui. ¦'
     'On va au parc ?'),
    ('multi', 'sentences',
     'Das ist z. B. ein Test. ¦'
     'Er funktioniert.'),
    ('multi', 'sentences',
     'Привет! ¦'
     'Как дела? ¦'
     'Всё хорошо.'),
    ('multi', 'sentences',
     'Γεια σου. ¦'
     'Τι κάνεις;'),
    ('multi', 'sentences',
     'Fine, thanks。¦'
     'Next one please。'),
    ('multi', 'sentences',
     'Ok！¦'
     'Let us go？¦'
     'Yes。'),
    # -- artefacts ---------------------------------------------------------------------------------------
    ('artefacts', 'sentences',
     'I checked the weather.¦'
     'The forecast says rain.'),
    ('artefacts', 'sentences',
     'Done!¦'
     'Next, I will book the table.'),
    ('artefacts', 'sentences', 'hello there. this reply starts lowercase.'),
    ('artefacts', 'sentences',
     'First line.  ¦'
     'Second line after two spaces.'),
    ('artefacts', 'sentences',
     'Paragraph one ends here.\n\n¦'
     'Paragraph two starts here.'),
    ('artefacts', 'sentences',
     '  Leading spaces are kept. ¦'
     'With the first phrase.  '),
    ('artefacts', 'sentences', 'A sentence without a final period'),
    ('artefacts', 'sentences',
     'Line one without punctuation\n¦'
     'Line two without punctuation'),
    ('artefacts', 'sentences',
     'Tabs\tand\tspaces.\t¦'
     'Then\tmore.'),
    ('artefacts', 'sentences', 'The end.\n'),
    ('artefacts', 'sentences',
     'Trailing newlines stay with the phrase.\n\n\n¦'
     'New part.'),
    ('artefacts', 'sentences',
     'Windows line endings.\r\n¦'
     'Still fine.'),
    ('artefacts', 'sentences',
     'Okay.¦'
     'Got it.¦'
     'Next step is ready.'),
    # -- length ------------------------------------------------------------------------------------------
    ('length', 'chatterbox',
     'Please remember to bring the blue folder ¦'
     'with all of the signed forms and both copies of your passport to the front desk.'),
    ('length', 'chatterbox',
     'When you get to the station take the northern exit ¦'
     'and walk past the bakery and the bookshop until you reach the big fountain in '
     'the square where I will be waiting for you with the tickets and the map of the '
     'old town that you asked me to print yesterday evening before the shop closed.'),
    ('length', 'chatterbox',
     'The system, which was designed in the early nineties ¦'
     'by a small team of engineers working out of a garage in Palo Alto, eventually '
     'grew into one of the most widely used tools in the industry, and it is still '
     'maintained today by a foundation.'),
    ('length', 'chatterbox',
     'Okay. So. Well. Right. ¦'
     'Let me explain how this works in a few steps.'),
    ('length', 'chatterbox', 'Yes.'),
    ('length', 'chatterbox', 'Hi!'),
    ('length', 'chatterbox',
     'Sure, no problem, happy to help, ¦'
     'just say when.'),
    ('length', 'piper',
     'Please remember to bring the blue folder ¦'
     'with all of the signed forms and both copies of your passport to the front desk.'),
    ('length', 'piper', 'Hi! How are you?'),
    ('length', 'piper',
     'Okay. Sure. ¦'
     'Go on.'),
]
