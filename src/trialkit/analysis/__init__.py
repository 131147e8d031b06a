"""trialkit.analysis"""
